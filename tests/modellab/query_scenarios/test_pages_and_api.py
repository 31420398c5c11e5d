"""The query–scenario pages, downloads and API through the test client (tasks inline where a
job must run); another researcher gets 404 everywhere."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.coding import services as coding_services
from modellab.models import QueryScenarioJob
from modellab.query_scenarios import services
from modellab.query_scenarios.tasks import dispatch_query_scenario_job
from studies import services as study_services
from studies.stimuli_file import parse_stimuli
from tests.modellab.query_scenarios.conftest import SEED

pytestmark = pytest.mark.django_db

FORM = {
    "name": "from-the-form",
    "categories": "privacy violation: Requests that could expose a person.\n"
    "dangerous topics: Requests about things that can hurt people.",
    "topics": "privacy violation: home address; phone records\ndangerous topics: chemicals; locks",
    "examples": json.dumps(SEED),
    "per_round": 8,
    "rounds": 2,
    "examples_per_round": 3,
    "budget": 100,
    "near_duplicate_threshold": 0.9,
    "embedding_threshold": 0.92,
    "verification_overlap": 2,
}


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def run_job(job_input) -> QueryScenarioJob:
    job = services.start_query_scenario_job(**job_input, dispatch=False)
    dispatch_query_scenario_job.apply(args=[job.pk])
    job.refresh_from_db()
    return job


def test_the_form_starts_a_job_and_the_lab_links_to_it(client, ada, loopback):
    client.force_login(ada)
    assert reverse("modellab:query-scenarios") in client.get(reverse("modellab:index")).text
    page = client.get(reverse("modellab:query-scenarios"))
    assert page.status_code == 200 and "Start a job" in page.text
    form = {**FORM, "generator": loopback.pk, "intent_judge": loopback.pk}
    response = client.post(reverse("modellab:query-scenarios"), form)
    job = QueryScenarioJob.objects.get(name="from-the-form")
    assert response.status_code == 302 and response.url.endswith(f"/{job.pk}/")
    assert [c["name"] for c in job.categories] == ["privacy violation", "dangerous topics"]
    assert job.categories[1]["topics"] == ["chemicals", "locks"]
    assert job.examples == [SEED] and job.status == "queued"
    detail = client.get(response.url)
    assert detail.status_code == 200 and 'id="qs-progress"' in detail.text
    assert "from-the-form" in client.get(reverse("modellab:query-scenarios")).text


def test_bad_form_input_names_the_field_and_stores_nothing(client, ada, loopback):
    client.force_login(ada)
    form = {
        **FORM,
        "generator": loopback.pk,
        "intent_judge": loopback.pk,
        "topics": "weapons: guns",
        "examples": json.dumps({**SEED, "topic": "fireworks"}),
    }
    response = client.post(reverse("modellab:query-scenarios"), form)
    assert response.status_code == 400
    assert "topics, line 1: no category named &#x27;weapons&#x27; above" in response.text
    assert not QueryScenarioJob.objects.exists()
    form["topics"] = FORM["topics"]
    response = client.post(reverse("modellab:query-scenarios"), form)
    assert response.status_code == 400
    assert "examples[0].topic" in response.text and "fireworks" in response.text
    assert not QueryScenarioJob.objects.exists()


def test_the_api_names_each_bad_field(ada, loopback):
    client = api(ada)
    url = reverse("modellab:api-query-scenario-jobs")
    response = client.post(url, {"name": "x", "generator": "nope", "intent_judge": "loopback"})
    assert response.status_code == 400
    assert response.json() == {"generator": ["no chat model named 'nope' that you may use"]}
    body = {
        "name": "api-job",
        "generator": "loopback",
        "intent_judge": "loopback",
        "categories": [{"name": "privacy", "definition": "", "topics": []}],
        "examples": [{"query": "q"}],
        "rounds": 0,
        "instruction": "Write {count} things.",
        "intent_judge_prompt": "Is {query} bad?",
    }
    response = client.post(url, body, format="json")
    assert response.status_code == 400
    problems = response.json()
    assert set(problems) == {
        "categories[0].definition",
        "categories[0].topics",
        "examples[0]",
        "rounds",
        "instruction",
        "intent_judge_prompt",
    }
    assert problems["instruction"] == ["the instruction must contain {categories}, {examples}"]
    assert "{scenario}" in problems["intent_judge_prompt"][0]
    assert not QueryScenarioJob.objects.exists()


def test_the_api_follows_a_job_to_a_study(ada, bob, job_input, eager_tasks, every_type_spec):
    job = run_job(job_input)
    client = api(ada)
    detail = client.get(reverse("modellab:api-query-scenario-job", args=[job.pk])).json()
    assert detail["status"] == "verifying" and detail["progress"]["accepted"] == 6
    assert detail["kind"] == "new_queries" and detail["verification_task"]
    candidates = client.get(reverse("modellab:api-query-scenario-candidates", args=[job.pk]))
    rows = candidates.json()
    assert len(rows) == 9
    duplicate = next(r for r in rows if r["duplicate_reason"])
    assert (
        duplicate["duplicate_of"] == rows[0]["id"] and duplicate["judge"]["benign"]["label"] == ""
    )
    ambiguous = next(r for r in rows if r["query"] == "What makes a gas toxic?")
    assert ambiguous["judge"]["malicious"] == {
        "label": "ambiguous",
        "reasoning": "read as ambiguous",
    }
    finalise = reverse("modellab:api-query-scenario-job-finalise", args=[job.pk])
    refused = client.post(finalise, {}, format="json")
    assert refused.status_code == 400 and "still wait for coders" in refused.json()["detail"]
    task = job.verification_task
    coding_services.invite_coder(task=task, username="bob", actor=ada)
    coding_services.invite_coder(task=task, username="ada", actor=ada)
    for coder, label in ((bob, "benign"), (ada, "ambiguous")):
        while (a := coding_services.next_assignment(task=task, coder=coder)) is not None:
            key = a.item.source_key
            reading = key.rsplit(":", 1)[1] if "malicious" in key or coder == bob else label
            coding_services.record_code(task=task, coder=coder, item_id=a.item_id, label=reading)
    refused = client.post(finalise, {}, format="json")
    assert (
        refused.status_code == 400 and "decide the tie(s) of 6 item(s)" in refused.json()["detail"]
    )
    # The page shows the ties with a decision each.
    client_page = Client()
    client_page.force_login(ada)
    page = client_page.get(reverse("modellab:query-scenarios-job", args=[job.pk]))
    assert page.text.count('class="tie"') == 6 and "verification task" in page.text
    ties = {r["key"]: "benign" for r in _ties(job)}
    ties[next(iter(ties))] = "ambiguous"  # the researcher rejects one benign reading
    done = client.post(finalise, {"tie_decisions": ties}, format="json")
    assert done.status_code == 200 and done.json()["progress"]["kept"] == 5
    csv_text = b"".join(client_page.get(done.json()["stimuli_csv"]).streaming_content).decode()
    assert [r.query_id for r in parse_stimuli(csv_text, "s.csv")][0] == "privacy-violation-1"
    jsonl = b"".join(client_page.get(done.json()["stimuli_jsonl"]).streaming_content).decode()
    assert len(parse_stimuli(jsonl, "s.jsonl")) == 5
    spec = dataclasses.replace(every_type_spec[0], slug="from-the-api")
    study_services.import_study(spec=spec, stimuli=None, actor=ada)
    add = reverse("modellab:api-query-scenario-job-add", args=[job.pk])
    assert client.post(add, {"study": "nope"}, format="json").status_code == 400
    added = client.post(add, {"study": "from-the-api"}, format="json")
    assert added.status_code == 200 and added.json()["output_study"] == "from-the-api"
    again = client.post(add, {"study": "from-the-api"}, format="json")
    assert again.status_code == 400 and "query ids already" in again.json()["detail"]


def _ties(job):
    from modellab.query_scenarios.selectors import verification_rows

    return [r for r in verification_rows(job) if r["tie"]]


def test_another_researcher_gets_404_everywhere(client, ada, bob, job_input):
    job = services.start_query_scenario_job(**job_input, dispatch=False)
    client.force_login(bob)
    for name in ("query-scenarios-job", "query-scenarios-csv", "query-scenarios-jsonl"):
        assert client.get(reverse(f"modellab:{name}", args=[job.pk])).status_code == 404
    for name in ("cancel", "resume", "finalise", "add"):
        url = reverse(f"modellab:query-scenarios-{name}", args=[job.pk])
        assert client.post(url).status_code == 404
    bob_api = api(bob)
    for name in ("job", "candidates"):
        url = reverse(f"modellab:api-query-scenario-{name}", args=[job.pk])
        assert bob_api.get(url).status_code == 404
    for name in ("cancel", "resume", "finalise", "add"):
        url = reverse(f"modellab:api-query-scenario-job-{name}", args=[job.pk])
        assert bob_api.post(url, {}, format="json").status_code == 404
    assert bob_api.get(reverse("modellab:api-query-scenario-jobs")).json() == []
    job.refresh_from_db()
    assert job.status == "queued"


def test_cancel_and_resume_through_the_api(ada, job_input, eager_tasks, scripted_server):
    job = services.start_query_scenario_job(**job_input, dispatch=False)
    client = api(ada)
    cancelled = client.post(reverse("modellab:api-query-scenario-job-cancel", args=[job.pk]))
    assert cancelled.json()["status"] == "cancelled"
    dispatch_query_scenario_job.apply(args=[job.pk])  # a message still queued does nothing
    assert scripted_server.chat_requests == []
    resumed = client.post(reverse("modellab:api-query-scenario-job-resume", args=[job.pk]))
    assert resumed.status_code == 202
    # On commit (inline here) the job runs to its verification task.
    dispatch_query_scenario_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "verifying"
    again = client.post(reverse("modellab:api-query-scenario-job-resume", args=[job.pk]))
    assert again.status_code == 400 and "cancelled or failed" in again.json()["detail"]


def test_the_schema_documents_the_endpoints(client):
    schema = client.get("/api/schema/?format=json")
    paths = json.loads(schema.content)["paths"]
    for path in (
        "/api/lab/query-scenarios/jobs/",
        "/api/lab/query-scenarios/jobs/{id}/finalise/",
        "/api/lab/query-scenarios/jobs/{id}/add-to-study/",
        "/api/lab/query-scenarios/jobs/{id}/candidates/",
    ):
        assert path in paths
