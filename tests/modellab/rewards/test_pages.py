"""The rewards page, its CSV download and the API: what a researcher sees and may do."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from modellab.models import RewardRun
from studies.generation import services as generation_services
from studies.models import StudyMembership
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db


def answer(request):
    content = request.body["messages"][1]["content"]
    score = -2 if "can't" in content or "cannot" in content else 2
    text = json.dumps({"score": score, "rationale": "scripted"})
    return Reply(json={"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def judge(chat_server, researcher):
    chat_server.handler = answer
    return generation_services.register_model(
        name="judge",
        backend="openai",
        backend_settings={"base_url": chat_server.url, "model": "j", "max_retries": 0},
        actor=researcher,
    )


def page_url(study) -> str:
    return reverse("modellab:rewards", kwargs={"slug": study.slug})


def test_start_a_run_from_the_page_and_read_its_results(
    client, owned_study, researcher, judge, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    url = page_url(owned_study)
    page = client.get(url)
    assert page.status_code == 200 and b"Score the study" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"model": "judge", "scorer": "llm_judge", "judge_prompt": ""})
    run = RewardRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{url}?run={run.pk}"
    run.refresh_from_db()
    assert run.status == RewardRun.Status.DONE and run.n_done == run.n_total

    page = client.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="by-type"' in html and "direct_refusal" in html and 'id="agreement"' in html
    assert 'data-figure="bar-z"' in html and 'id="rewards-data"' in html
    assert "Content-Security-Policy" in page.headers

    download = client.get(reverse("modellab:rewards-csv", args=[owned_study.slug, run.pk]))
    rows = list(csv.DictReader(io.StringIO(download.content.decode())))
    assert download.status_code == 200 and len(rows) == run.n_total
    assert {r["status"] for r in rows} == {"done"} and {r["score"] for r in rows} <= {"-2.0", "2.0"}
    assert {r["motivation"] for r in rows} == {"", "benign", "malicious"}


def test_bad_form_input_is_shown_and_starts_nothing(client, owned_study, researcher, judge):
    client.force_login(researcher)
    url = page_url(owned_study)
    response = client.post(url, {"model": "judge", "scorer": "reward_model"})
    assert response.status_code == 400 and b"local transformers model" in response.content
    response = client.post(url, {"model": "ghost", "scorer": "llm_judge"})
    assert response.status_code == 400 and b"Select a valid choice" in response.content
    assert not RewardRun.objects.exists()


def test_others_cannot_see_and_viewers_cannot_start(
    client, owned_study, researcher, judge, eager_tasks
):
    users = get_user_model().objects
    outsider = users.create_user("otto", password="pw-otto-123456")
    viewer = users.create_user("vic", password="pw-vic-123456")
    StudyMembership.objects.create(study=owned_study, user=viewer, role="viewer")
    client.force_login(researcher)
    client.post(page_url(owned_study), {"model": "judge", "scorer": "llm_judge"})
    run = RewardRun.objects.get()
    slug = owned_study.slug
    urls = [
        page_url(owned_study),
        reverse("modellab:rewards-csv", args=[slug, run.pk]),
        reverse("modellab:api-reward-runs", args=[slug]),
        reverse("modellab:api-reward-run", args=[slug, run.pk]),
        reverse("modellab:api-reward-run-scores", args=[slug, run.pk]),
        reverse("modellab:api-reward-run-agreement", args=[slug, run.pk]) + "?measure=x",
    ]
    client.force_login(outsider)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(page_url(owned_study), {"model": "judge"}).status_code == 404
    client.force_login(viewer)
    for url in urls[:-1]:
        assert client.get(url).status_code == 200, url
    page = client.get(page_url(owned_study))
    assert b"Score the study" not in page.content
    assert client.post(page_url(owned_study), {"model": "judge"}).status_code == 403
    api = reverse("modellab:api-reward-runs", args=[slug])
    assert client.post(api, {"model": "judge", "scorer": "llm_judge"}).status_code == 403
    assert RewardRun.objects.count() == 1


def test_api_start_follow_and_compare(
    client, owned_study, researcher, judge, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    slug = owned_study.slug
    api = reverse("modellab:api-reward-runs", args=[slug])
    bad = client.post(api, {"model": "judge", "scorer": "nope"}, content_type="application/json")
    assert bad.status_code == 400 and "scorer" in bad.json()
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(
            api, {"model": "judge", "scorer": "llm_judge"}, content_type="application/json"
        )
    assert started.status_code == 202, started.content
    body = started.json()
    detail = client.get(reverse("modellab:api-reward-run", args=[slug, body["id"]])).json()
    assert (
        detail["progress"]["finished"] and detail["progress"]["done"] == detail["progress"]["total"]
    )
    means = {r["response_type"]: r["mean"] for r in detail["by_response_type"]}
    assert means["full_compliance"] == 2.0
    scores = client.get(reverse("modellab:api-reward-run-scores", args=[slug, body["id"]]))
    assert len(scores.json()) == detail["progress"]["total"]
    agreement = reverse("modellab:api-reward-run-agreement", args=[slug, body["id"]])
    assert client.get(agreement + "?measure=nope").status_code == 400
    measure = owned_study.questions.filter(is_attention_check=False).first().key
    result = client.get(agreement + f"?measure={measure}").json()
    # The study has not run yet: no stimulus has ratings, so nothing is compared.
    assert result["overall"]["n"] == 0 and result["overall"]["spearman"] is None


def test_two_scorers_side_by_side(
    client, owned_study, researcher, judge, eager_tasks, django_capture_on_commit_callbacks
):
    client.force_login(researcher)
    url = page_url(owned_study)
    for prompt in ("", "Score it from -3 to 3, as JSON."):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(url, {"model": "judge", "scorer": "llm_judge", "judge_prompt": prompt})
    assert RewardRun.objects.filter(status="done").count() == 2
    html = client.get(url).content.decode()
    assert 'id="comparison"' in html and 'data-figure="compare-z"' in html
    table = html.split('id="comparison"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 3  # header + one row per run
