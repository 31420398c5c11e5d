"""Studies over the API: create from a spec, read and replace it, duplicate, stimuli, audit."""

from __future__ import annotations

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from studies.domain import RESPONSE_TYPES
from studies.models import Query, Study
from studies.spec import spec_dict
from tests.api.conftest import api_for
from tests.conftest import EVERY_TYPE_SPEC, ROOT

pytestmark = pytest.mark.django_db

STIMULI = ROOT / "examples" / "refusal-perception" / "stimuli.csv"


@pytest.fixture
def spec_json(every_type_spec) -> dict:
    spec = spec_dict(every_type_spec[0])
    spec.pop("stimuli", None)
    return json.loads(json.dumps(spec))  # what a client sends: plain JSON types


def test_create_from_json_spec_makes_the_caller_owner(people, spec_json):
    ada = api_for(people.owner)
    response = ada.post("/api/studies/", spec_json, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "every-type" and body["status"] == "draft" and body["role"] == "owner"
    assert body["spec"]["questions"][0]["key"] == spec_json["questions"][0]["key"]
    study = Study.objects.get(slug="every-type")
    assert study.memberships.get().user == people.owner
    # Listed for its members only, paginated.
    listing = ada.get("/api/studies/?status=draft").json()
    assert listing["count"] == 1 and listing["results"][0]["slug"] == "every-type"
    assert api_for(people.other).get("/api/studies/").json()["count"] == 0
    assert ada.get("/api/studies/?status=live").json()["count"] == 0


def test_create_from_yaml_reports_problems_with_lines(people):
    text = EVERY_TYPE_SPEC.read_text().replace(
        "items_per_participant: 5", "items_per_participant: x"
    )
    response = api_for(people.owner).post("/api/studies/", text, content_type="application/yaml")
    assert response.status_code == 400
    problem = response.json()["problems"][0]
    assert problem["path"] == "items_per_participant" and problem["line"] > 1
    assert not Study.objects.exists()
    response = api_for(people.owner).post(
        "/api/studies/", EVERY_TYPE_SPEC.read_text(), content_type="application/yaml"
    )
    assert response.status_code == 201, response.content


def test_bad_spec_lists_every_problem_with_its_path_and_stores_nothing(people, spec_json):
    bad = copy.deepcopy(spec_json)
    bad["questions"][0]["scale"]["points"] = 1
    bad["target_participants"] = "many"
    response = api_for(people.owner).post("/api/studies/", bad, format="json")
    assert response.status_code == 400
    paths = {p["path"] for p in response.json()["problems"]}
    assert "target_participants" in paths
    assert any(p.startswith("questions[0].scale") for p in paths)
    assert api_for(people.owner).post("/api/studies/", [1, 2], format="json").status_code == 400
    assert not Study.objects.exists()


def test_a_taken_slug_is_refused_not_overwritten(people, draft, spec_json):
    hijack = {**spec_json, "slug": draft.slug, "title": "Hijacked"}
    response = api_for(people.other).post("/api/studies/", hijack, format="json")
    assert response.status_code == 400 and response.json()["problems"][0]["path"] == "slug"
    draft.refresh_from_db()
    assert draft.title != "Hijacked" and draft.memberships.filter(user=people.other).count() == 0


def test_read_and_replace_the_spec(people, draft):
    url = f"/api/studies/{draft.slug}/"
    spec = api_for(people.viewer).get(url).json()["spec"]
    assert spec["slug"] == draft.slug
    spec["title"] = "A new title"
    assert api_for(people.viewer).put(url, spec, format="json").status_code == 403
    assert api_for(people.other).put(url, spec, format="json").status_code == 404
    assert api_for(people.other).get(url).status_code == 404
    response = api_for(people.editor).put(url, spec, format="json")
    assert response.status_code == 200 and response.json()["title"] == "A new title"
    renamed = {**spec, "slug": "elsewhere"}
    response = api_for(people.editor).put(url, renamed, format="json")
    assert response.status_code == 400 and response.json()["problems"][0]["path"] == "slug"


def test_a_live_studys_spec_cannot_be_replaced(people, make_study):
    study = make_study()  # launched
    from studies.models import StudyMembership

    StudyMembership.objects.create(study=study, user=people.owner, role="owner")
    url = f"/api/studies/{study.slug}/"
    spec = api_for(people.owner).get(url).json()["spec"]
    spec["title"] = "changed"
    response = api_for(people.owner).put(url, spec, format="json")
    assert response.status_code == 409 and "live" in response.json()["detail"]


def test_duplicate_makes_a_draft_you_own(people, draft):
    response = api_for(people.viewer).post(
        f"/api/studies/{draft.slug}/duplicate/", {"slug": "second-version"}, format="json"
    )
    assert response.status_code == 201, response.content
    copy_ = Study.objects.get(slug="second-version")
    assert copy_.status == "draft" and copy_.duplicated_from == draft
    assert copy_.memberships.get().user == people.viewer
    assert copy_.queries.count() == draft.queries.count()
    response = api_for(people.viewer).post(
        f"/api/studies/{draft.slug}/duplicate/", {"slug": draft.slug}, format="json"
    )
    assert response.status_code == 400


def test_stimuli_dry_run_previews_and_saves_nothing(people, spec_json):
    ada = api_for(people.owner)
    ada.post("/api/studies/", spec_json, format="json")
    url = "/api/studies/every-type/stimuli/"
    upload = SimpleUploadedFile("stimuli.csv", STIMULI.read_bytes(), content_type="text/csv")
    response = ada.post(url + "?dry_run=1", {"file": upload}, format="multipart")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["dry_run"] is True and body["rows"] == 16 and len(body["new"]) == 16
    assert body["preview"][0]["query_id"] == "q01" and body["preview"][0]["line"] == 2
    assert not Query.objects.exists()
    upload = SimpleUploadedFile("stimuli.csv", STIMULI.read_bytes(), content_type="text/csv")
    response = ada.post(url, {"file": upload}, format="multipart")
    assert response.status_code == 200 and response.json()["dry_run"] is False
    assert Query.objects.filter(study__slug="every-type").count() == 16


def test_stimuli_as_json_rows_and_their_problems(people, draft):
    url = f"/api/studies/{draft.slug}/stimuli/"
    row = {
        "query_id": "q99",
        "query": "How do I pick a lock?",
        "category": "dangerous_topics",
        "topic": "locks",
        "benign_scenario": "You are locked out.",
        "malicious_scenario": "You want to break in.",
        # Like a file's columns: every response type present, texts may be empty.
        **dict.fromkeys(RESPONSE_TYPES, ""),
    }
    before = draft.queries.count()
    bad = {"rows": [row, {**row, "query_id": "q98", "benign_scenario": ""}]}
    response = api_for(people.editor).post(url, bad, format="json")
    assert response.status_code == 400
    problem = response.json()["problems"][0]
    assert problem["path"].startswith("line 2") and "benign_scenario" in problem["message"]
    assert draft.queries.count() == before
    response = api_for(people.viewer).post(url, {"rows": [row]}, format="json")
    assert response.status_code == 403
    response = api_for(people.editor).post(url, {"rows": [row]}, format="json")
    assert response.status_code == 200 and response.json()["new"] == ["q99"]
    assert draft.queries.count() == before + 1
    assert api_for(people.editor).post(url, {}, format="json").status_code == 400


def test_queries_and_audit_log(people, draft):
    queries = api_for(people.viewer).get(
        f"/api/studies/{draft.slug}/queries/?category=privacy_violation"
    )
    assert queries.status_code == 200
    results = queries.json()["results"]
    assert results and all(q["category"] == "privacy_violation" for q in results)
    assert set(results[0]["scenarios"]) == {"benign", "malicious"}
    search = api_for(people.viewer).get(f"/api/studies/{draft.slug}/queries/?q=q01").json()
    assert [q["query_id"] for q in search["results"]] == ["q01"]
    audit = api_for(people.viewer).get(f"/api/studies/{draft.slug}/audit/").json()
    assert {e["action"] for e in audit["results"]} >= {"study_imported", "stimuli_imported"}
    assert api_for(people.other).get(f"/api/studies/{draft.slug}/audit/").status_code == 404
