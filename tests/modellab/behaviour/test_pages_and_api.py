"""The model-behaviour page, its downloads and its API: what a researcher sees and gets, and
that another researcher gets nothing (404, as for every study that is not theirs)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth import get_user_model

from modellab.behaviour import selectors
from modellab.models import ClassificationLabel, ClassificationRun
from studies.models import GenerationItem, StudyMembership
from tests.modellab.behaviour.conftest import EXPECTED_LABEL

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(natural_study):
    study, _models = natural_study
    users = get_user_model().objects
    owner = users.create_user("ada", password="pw-ada-123")
    viewer = users.create_user("vic", password="pw-vic-123")
    stranger = users.create_user("bob", password="pw-bob-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    StudyMembership.objects.create(study=study, user=viewer, role="viewer")
    return owner, viewer, stranger


def start_from_page(client, study, capture, **data):
    form = {"classifier": "string_match", "scheme": "three_way", **data}
    with capture(execute=True):
        response = client.post(f"/studies/{study.slug}/lab/behaviour/", form)
    return response


def test_page_starts_a_run_and_shows_chart_table_and_downloads(
    client, natural_study, people, django_capture_on_commit_callbacks
):
    study, (alpha, beta) = natural_study
    owner, _viewer, _stranger = people
    client.force_login(owner)
    base = f"/studies/{study.slug}/lab/behaviour/"

    page = client.get(base)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Classify natural responses" in html
    assert f'value="{alpha.pk}"' in html and f'value="{beta.pk}"' in html
    assert "No response was labelled" not in html and "behaviour-data" not in html

    response = start_from_page(
        client, study, django_capture_on_commit_callbacks, models=[alpha.pk, beta.pk]
    )
    run = ClassificationRun.objects.get(study=study)
    assert response.status_code == 302 and response["Location"] == f"{base}{run.pk}/"

    html = client.get(response["Location"]).content.decode()
    assert "96 of 96 responses classified" in html
    for model in ("alpha", "beta"):
        assert f'data-figure="model-{model}"' in html and f'id="table-model-{model}"' in html
    payload = json.loads(
        html.split('id="behaviour-data" type="application/json">')[1].split("<")[0]
    )
    figure = payload["figures"]["model-alpha"]
    assert figure["layout"]["barmode"] == "stack"
    assert [t["name"] for t in figure["data"]] == [
        "Full refusal",
        "Partial refusal",
        "Full compliance",
    ]
    # 4 categories + all, 3 framings each: 15 bars per label, with counts and CIs in the hover.
    assert len(figure["data"][0]["x"][0]) == 15
    assert "95% CI" in figure["data"][0]["hovertemplate"]
    # The table: each cell's count, share and CI; the pooled row of all 48 responses.
    rows = [r for r in selectors.distribution(run) if r["model"] == "alpha"]
    overall = next(r for r in rows if r["category"] == r["framing"] == "(all)")
    share = f"{100 * overall['share']:.0f}%"
    assert f"{overall['count']} ({share}, " in html and "<td>48</td>" in html

    labels = client.get(f"{base}{run.pk}/labels.csv")
    assert labels.status_code == 200 and labels["Content-Type"].startswith("text/csv")
    assert "attachment" in labels["Content-Disposition"]
    table = list(csv.DictReader(io.StringIO(labels.content.decode())))
    assert len(table) == 96
    assert list(table[0]) == list(selectors.LABEL_COLUMNS)
    items = {
        (i.model.name, i.query.query_id, i.framing): i
        for i in GenerationItem.objects.filter(study=study).select_related("model", "query")
    }
    for row in table:
        item = items[(row["model"], row["query_id"], row["framing"])]
        assert row["text"] == item.text and row["label"] == EXPECTED_LABEL[item.text]
        assert row["category"] == item.query.category and row["rationale"]

    dist = client.get(f"{base}{run.pk}/distribution.csv")
    got = list(csv.DictReader(io.StringIO(dist.content.decode())))
    want = selectors.distribution(run)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g["model"], g["category"], g["framing"], g["label"]) == (
            w["model"],
            w["category"],
            w["framing"],
            w["label"],
        )
        assert int(g["count"]) == w["count"] and int(g["n_unparsed"]) == w["n_unparsed"]
        assert float(g["ci_low"]) == pytest.approx(w["ci_low"])


def test_a_bad_form_comes_back_with_its_errors_and_starts_nothing(
    client, natural_study, people, django_capture_on_commit_callbacks
):
    study, (alpha, _beta) = natural_study
    owner, _viewer, _stranger = people
    client.force_login(owner)
    bad = [
        ({"models": [alpha.pk], "scheme": "five_way"}, "three-way only"),
        ({"models": [alpha.pk], "classifier": "llm_judge"}, "llm_judge needs a judge model"),
        ({}, "This field is required"),
        ({"models": [alpha.pk], "window": "0"}, "greater than or equal to 1"),
        (
            {
                "models": [alpha.pk],
                "classifier": "llm_judge",
                "judge_model": alpha.pk,
                "judge_prompt": "Judge {prompt} {nope} {response}",
            },
            "unknown placeholder",
        ),
    ]
    for data, message in bad:
        response = start_from_page(client, study, django_capture_on_commit_callbacks, **data)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert not ClassificationRun.objects.exists() and not ClassificationLabel.objects.exists()


def test_viewers_read_but_cannot_start_and_strangers_get_404(
    client, natural_study, people, django_capture_on_commit_callbacks
):
    study, (alpha, _beta) = natural_study
    owner, viewer, stranger = people
    client.force_login(owner)
    start_from_page(client, study, django_capture_on_commit_callbacks, models=[alpha.pk])
    run = ClassificationRun.objects.get()
    base = f"/studies/{study.slug}/lab/behaviour/"
    api = f"/api/studies/{study.slug}/lab/behaviour/runs/"
    reads = [base, f"{base}{run.pk}/", f"{base}{run.pk}/labels.csv"]
    reads += [f"{base}{run.pk}/distribution.csv", api, f"{api}{run.pk}/"]

    client.force_login(viewer)
    for url in reads:
        assert client.get(url).status_code == 200, url
    html = client.get(base).content.decode()
    assert "Editors and owners of this study can start" in html
    assert 'class="behaviour-form"' not in html
    assert (
        start_from_page(
            client, study, django_capture_on_commit_callbacks, models=[alpha.pk]
        ).status_code
        == 403
    )
    assert (
        client.post(
            api,
            {"classifier": "string_match", "models": ["alpha"]},
            content_type="application/json",
        ).status_code
        == 403
    )
    assert client.post(f"{base}{run.pk}/cancel/").status_code == 403

    client.force_login(stranger)
    for url in reads:
        assert client.get(url).status_code == 404, url
    assert (
        start_from_page(
            client, study, django_capture_on_commit_callbacks, models=[alpha.pk]
        ).status_code
        == 404
    )
    assert (
        client.post(
            api,
            {"classifier": "string_match", "models": ["alpha"]},
            content_type="application/json",
        ).status_code
        == 404
    )
    assert ClassificationRun.objects.count() == 1

    client.logout()
    assert client.get(base).status_code == 302
    assert client.get(api).status_code in (401, 403)


def test_api_starts_a_run_reports_progress_and_distribution_and_refuses_bad_input(
    client, natural_study, people, django_capture_on_commit_callbacks
):
    study, (alpha, beta) = natural_study
    owner, _viewer, _stranger = people
    client.force_login(owner)
    api = f"/api/studies/{study.slug}/lab/behaviour/runs/"

    bad = [
        ({"classifier": "regex", "models": ["alpha"]}, "classifier"),
        ({"classifier": "string_match", "models": []}, "models"),
        ({"classifier": "string_match", "models": ["nobody"]}, "models"),
        ({"classifier": "string_match", "scheme": "five_way", "models": ["alpha"]}, "detail"),
        ({"classifier": "llm_judge", "models": ["alpha"], "judge_model": "ghost"}, "judge_model"),
        ({"classifier": "string_match", "models": ["alpha"], "phrases": {"x": 1}}, "detail"),
    ]
    for payload, field in bad:
        response = client.post(api, payload, content_type="application/json")
        assert response.status_code == 400, payload
        assert field in response.json(), response.json()
    assert not ClassificationRun.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            api,
            {"classifier": "string_match", "models": ["alpha", "beta"]},
            content_type="application/json",
        )
    assert response.status_code == 202
    run_id = response.json()["id"]
    detail = client.get(f"{api}{run_id}/").json()
    assert detail["status"] == "done" and detail["models"] == ["alpha", "beta"]
    assert detail["name"] == f"string_match three_way #{run_id}"
    assert detail["progress"] == {**detail["progress"], "done": 96, "total": 96, "finished": True}
    assert detail["params"]["classifier"] == "string_match"
    assert detail["params"]["phrases"]["window"] > 0 and detail["params"]["code_version"]
    run = ClassificationRun.objects.get(pk=run_id)
    assert detail["distribution"] == json.loads(json.dumps(selectors.distribution(run)))
    progress = client.get(f"{api}{run_id}/?progress_only=1").json()
    assert "distribution" not in progress and progress["progress"] == detail["progress"]
    listed = client.get(api).json()
    assert [r["id"] for r in listed] == [run_id] and "distribution" not in listed[0]
    assert client.get(f"{api}{run_id + 1}/").status_code == 404


def test_a_five_way_judge_run_shows_the_five_types_and_its_prompt(
    client, natural_study, people, chat_server, scripted, django_capture_on_commit_callbacks
):
    from modellab.behaviour import services
    from tests.modellab.behaviour.conftest import COMPLIANCE, REFUSAL, register

    study, (alpha, _beta) = natural_study
    owner, _viewer, _stranger = people
    judge = register("judge", chat_server.url)

    def answer(body):
        text = json.dumps(body["messages"])
        label = (
            "direct_refusal"
            if REFUSAL in text
            else "full_compliance"
            if COMPLIANCE in text
            else "redirection"
        )
        return json.dumps({"label": label, "rationale": "scripted"})

    scripted.judge = answer
    with django_capture_on_commit_callbacks(execute=True):
        run = services.start_classification_run(
            study=study,
            models=[alpha],
            classifier="llm_judge",
            scheme="five_way",
            judge_model=judge,
            judge_prompt="Label it. Request: {prompt}\nResponse: {response}\nLabels: {labels}",
            actor=owner,
        )
    client.force_login(owner)
    html = client.get(f"/studies/{study.slug}/lab/behaviour/{run.pk}/").content.decode()
    header = html.split('id="table-model-alpha"')[1].split("</thead>")[0]
    for name in (
        "Direct refusal",
        "Explanation-based refusal",
        "Redirection",
        "Partial compliance",
        "Full compliance",
    ):
        assert f'<th scope="col">{name}</th>' in header
    assert "Label it. Request: {prompt}" in html and "Judge: judge, asked at temperature 0" in html
    rows = selectors.distribution(run)
    overall = {r["label"]: r["count"] for r in rows if r["category"] == r["framing"] == "(all)"}
    assert overall["explanation_based"] == overall["partial_compliance"] == 0
    assert sum(overall.values()) == 48
    texts = GenerationItem.objects.filter(study=study, model=alpha)
    assert overall["direct_refusal"] == texts.filter(text=REFUSAL).count()
