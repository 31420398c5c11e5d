"""The false-refusal page, run page, CSV download and API, through the test client; another
researcher gets 404 everywhere."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from modellab.models import FalseRefusalRun, PromptSet
from studies.generation import services as generation_services
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db

PAGE = "modellab:false-refusal"


def answer_by_keyword(request) -> Reply:
    """Refuse a prompt that says 'kill' or 'shoot', comply with anything else."""
    prompt = request.body["messages"][-1]["content"].lower()
    text = "I cannot help with that." if ("kill" in prompt or "shoot" in prompt) else "Sure: ..."
    return Reply(json={"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def model(chat_server, ada):
    chat_server.handler = answer_by_keyword
    return generation_services.register_model(
        name="loopback",
        backend="openai",
        backend_settings={"base_url": chat_server.url, "model": "m", "max_retries": 0},
        actor=ada,
    )


def import_sample(client, data: bytes, name: str = "phtest-sample"):
    return client.post(
        reverse(PAGE),
        {
            "form": "import",
            "name": name,
            "file": SimpleUploadedFile("sample.csv", data, content_type="text/csv"),
            "prompt_column": "Request",
            "label_column": "Harmfulness",
            "category_column": "",
            "id_column": "ID",
        },
    )


def test_import_start_read_and_download(
    client, ada, model, phtest_sample, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(ada)
    page = client.get(reverse(PAGE))
    assert page.status_code == 200
    assert b"Import a prompt set" in page.content and b"Import a prompt set first" in page.content
    response = import_sample(client, phtest_sample)
    prompt_set = PromptSet.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("modellab:false-refusal-set", args=[prompt_set.pk])
    detail = client.get(response["Location"]).content.decode()
    assert prompt_set.sha256 in detail and "harmless:" in detail and "controversial:" in detail
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse(PAGE),
            {
                "form": "start",
                "prompt_set": prompt_set.pk,
                "models": [model.pk],
                "classifier": "string_match",
                "seed": 0,
            },
        )
    run = FalseRefusalRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("modellab:false-refusal-run", args=[run.pk])
    run.refresh_from_db()
    assert run.status == "done"
    page = client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-figure="frr-loopback"' in html and 'id="frr-table"' in html
    payload = json.loads(
        html.split('<script id="frr-data" type="application/json">')[1].split("</script>")[0]
    )
    figure = payload["figures"]["frr-loopback"]
    assert [trace["name"] for trace in figure["data"]] == ["Full refusal", "Full + partial refusal"]
    assert figure["data"][0]["x"] == ["harmless", "controversial"]
    assert "error_y" in figure["data"][0]
    # The table's numbers: the keyword rule applied to the sample's own prompts.
    prompts = list(prompt_set.prompts.all())
    harmless = [p for p in prompts if p.label == "harmless"]
    refused = sum(("kill" in p.text.lower() or "shoot" in p.text.lower()) for p in harmless)
    assert f"<td>harmless</td><td>{len(harmless)}</td><td>{refused}</td>" in html
    # The download: every response with its label.
    download = client.get(reverse("modellab:false-refusal-responses-csv", args=[run.pk]))
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rows) == len(prompts)
    by_id = {r["prompt_id"]: r for r in rows}
    for prompt in prompts:
        row = by_id[prompt.external_id]
        assert row["prompt"] == prompt.text and row["prompt_label"] == prompt.label
        expected = (
            "full_refusal"
            if ("kill" in prompt.text.lower() or "shoot" in prompt.text.lower())
            else "full_compliance"
        )
        assert (row["label"], row["model"], row["classifier"]) == (
            expected,
            "loopback",
            "string_match",
        )
        assert row["response"] in ("I cannot help with that.", "Sure: ...")
    # The list shows the run.
    assert f"Run {run.pk}" in client.get(reverse(PAGE)).content.decode()


def test_bad_import_shows_the_lines_and_stores_nothing(client, ada):
    client.force_login(ada)
    bad = b"ID,Request,Harmfulness\n1,fine,harmless\n2,,harmless\n1,again,harmless\n"
    response = import_sample(client, bad)
    assert response.status_code == 400
    html = response.content.decode()
    assert "line 3: the prompt (Request) is empty" in html
    assert "line 4: the id &#x27;1&#x27; is already used on line 2" in html
    assert not PromptSet.objects.exists()


def test_start_form_refuses_a_judge_less_llm_judge(client, ada, model, phtest_sample):
    client.force_login(ada)
    import_sample(client, phtest_sample)
    response = client.post(
        reverse(PAGE),
        {
            "form": "start",
            "prompt_set": PromptSet.objects.get().pk,
            "models": [model.pk],
            "classifier": "llm_judge",
            "seed": 0,
        },
    )
    assert response.status_code == 400 and b"llm_judge needs a judge model" in response.content
    assert not FalseRefusalRun.objects.exists()


def test_another_researcher_gets_404(client, ada, bob, model, phtest_sample):
    client.force_login(ada)
    import_sample(client, phtest_sample)
    prompt_set = PromptSet.objects.get()
    from modellab.false_refusal import services

    run = services.start_false_refusal_run(
        prompt_set=prompt_set, models=[model], classifier="string_match", actor=ada, dispatch=False
    )
    client.force_login(bob)
    for name, pk in [
        ("modellab:false-refusal-set", prompt_set.pk),
        ("modellab:false-refusal-run", run.pk),
        ("modellab:false-refusal-responses-csv", run.pk),
        ("modellab:api-false-refusal-prompt-set", prompt_set.pk),
        ("modellab:api-false-refusal-run", run.pk),
    ]:
        assert client.get(reverse(name, args=[pk])).status_code == 404, name
    assert client.post(reverse("modellab:false-refusal-retry", args=[run.pk])).status_code == 404
    page = client.get(reverse(PAGE)).content.decode()
    assert "phtest-sample" not in page and f"Run {run.pk}" not in page
    assert client.get(reverse("modellab:api-false-refusal-runs")).json() == []
    # Nor can bob start a run on ada's set.
    response = client.post(
        reverse("modellab:api-false-refusal-runs"),
        {"prompt_set": prompt_set.pk, "models": ["loopback"]},
        content_type="application/json",
    )
    assert response.status_code == 404
    client.logout()
    assert client.get(reverse(PAGE)).status_code == 302  # to the login page


def test_api_import_rows_and_file_start_and_follow(
    client, ada, model, phtest_sample, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(ada)
    url = reverse("modellab:api-false-refusal-prompt-sets")
    bad = client.post(
        url,
        {
            "name": "rows",
            "rows": [{"q": "how to kill time", "g": "harmless"}, {"q": "", "g": "harmless"}],
            "mapping": {"prompt": "q", "label": "g"},
        },
        content_type="application/json",
    )
    assert bad.status_code == 400 and bad.json()["problems"] == ["row 2: the prompt (q) is empty"]
    assert not PromptSet.objects.exists()
    created = client.post(
        url,
        {
            "name": "rows",
            "rows": [
                {"q": "how to kill time", "g": "harmless"},
                {"q": "how to bake", "g": "harmless"},
            ],
            "mapping": {"prompt": "q", "label": "g"},
        },
        content_type="application/json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["groups"] == {"harmless": 2}
    uploaded = client.post(
        url, {"name": "phtest", "file": SimpleUploadedFile("PHTest.csv", phtest_sample)}
    )
    assert uploaded.status_code == 201, uploaded.json()
    assert uploaded.json()["mapping"] == {
        "prompt": "Request",
        "label": "Harmfulness",
        "category": "",
        "id": "ID",
    }
    runs = reverse("modellab:api-false-refusal-runs")
    unknown = client.post(
        runs,
        {"prompt_set": created.json()["id"], "models": ["ghost"]},
        content_type="application/json",
    )
    assert unknown.status_code == 400 and "ghost" in json.dumps(unknown.json())
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            runs,
            {"prompt_set": created.json()["id"], "models": ["loopback"]},
            content_type="application/json",
        )
    assert started.status_code == 202, started.json()
    detail = client.get(
        reverse("modellab:api-false-refusal-run", args=[started.json()["id"]])
    ).json()
    assert detail["status"] == "done" and detail["progress"]["labelled"] == 2
    [rates] = detail["rates"]
    [group] = rates["groups"]
    assert (group["group"], group["n"], group["full"]["count"]) == ("harmless", 2, 1)
    assert group["full"]["rate"] == 0.5
