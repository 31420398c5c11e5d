"""Review actions, the study's lifecycle, the dashboard and analysis results over the API."""

from __future__ import annotations

import pytest

from annotation.services import give_consent, join_study
from studies.models import AnalysisResult, AuditEvent, ResponseVariant, Study
from tests.api.conftest import api_for

pytestmark = pytest.mark.django_db


def generated(study, query_id: str, response_type: str, text: str, sample: int = 0):
    return ResponseVariant.objects.create(
        query=study.queries.get(query_id=query_id),
        response_type=response_type,
        model_name="loopback",
        sample=sample,
        text=text,
        source="generated",
        review_status="generated",
        provenance={"model": "loopback", "job": 1},
    )


def test_review_list_filters_and_actions(people, draft):
    first = generated(draft, "q01", "redirection", "Try the library.")
    second = generated(draft, "q02", "redirection", "Ask a teacher.")
    url = f"/api/studies/{draft.slug}/variants/"
    viewer = api_for(people.viewer)
    listing = viewer.get(url + "?status=generated&model=loopback").json()
    assert listing["count"] == 2 and {v["id"] for v in listing["results"]} == {
        first.pk,
        second.pk,
    }
    assert viewer.get(url + "?response_type=redirection&q=library").json()["count"] == 1
    assert viewer.get(url + "?status=nonsense").status_code == 400
    assert viewer.post(f"{url}{first.pk}/approve/").status_code == 403
    editor = api_for(people.editor)
    response = editor.patch(f"{url}{first.pk}/", {"text": "Try your local library."}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["text"] == "Try your local library."
    assert body["edits"][0]["previous_text"] == "Try the library."
    assert body["edits"][0]["by"] == "eve"
    assert editor.patch(f"{url}{first.pk}/", {"text": "  "}, format="json").status_code == 400
    response = editor.post(f"{url}{first.pk}/approve/")
    assert response.json()["review_status"] == "approved"
    # The imported text of that query and type was approved before; now it is rejected.
    imported = ResponseVariant.objects.get(
        query__query_id="q01", response_type="redirection", model_name=""
    )
    assert imported.review_status == "rejected"
    assert editor.post(f"{url}{first.pk}/reject/").json()["review_status"] == "rejected"
    response = editor.post(url + "approve/", {"ids": [first.pk, second.pk]}, format="json")
    assert response.status_code == 200 and response.json() == {"approved": 2}
    response = editor.post(url + "approve/", {"ids": [first.pk, 999999]}, format="json")
    assert response.status_code == 400
    assert api_for(people.other).get(url).status_code == 404
    # A text of another study is not reachable through this one.
    assert editor.get(f"{url}999999/").status_code == 404


def test_lifecycle_from_pilot_to_archive(people, draft):
    base = f"/api/studies/{draft.slug}/"
    editor, owner = api_for(people.editor), api_for(people.owner)
    assert api_for(people.viewer).post(base + "launch/", {}, format="json").status_code == 403
    response = editor.post(base + "launch/", {"pilot_slots": 6}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["slots"] == 6 and response.json()["status"] == "live"
    response = editor.post(base + "launch-full/")
    assert response.json()["slots"] == draft.target_participants
    assert editor.post(base + "pause/").json()["status"] == "paused"
    response = editor.post(base + "pause/")
    assert response.status_code == 409 and "paused" in response.json()["detail"]
    assert editor.post(base + "resume/").json()["status"] == "live"
    response = editor.post(base + "add-slots/", {"count": 10}, format="json")
    assert response.json()["target_participants"] == draft.target_participants + 10
    assert editor.post(base + "add-slots/", {"count": 0}, format="json").status_code == 400
    assert editor.post(base + "close/").json()["status"] == "closed"
    assert editor.post(base + "archive/").status_code == 403  # owners only
    assert owner.post(base + "archive/").json()["status"] == "archived"
    assert owner.post(base + "delete/", {"confirm": "wrong"}, format="json").status_code == 409
    assert editor.post(base + "delete/", {"confirm": draft.slug}, format="json").status_code == 403
    assert Study.objects.filter(pk=draft.pk).exists()
    response = owner.post(base + "delete/", {"confirm": draft.slug}, format="json")
    assert response.status_code == 204
    assert not Study.objects.filter(pk=draft.pk).exists()


def test_a_refused_launch_lists_its_reasons(people, draft):
    draft.queries.all().delete()
    response = api_for(people.owner).post(f"/api/studies/{draft.slug}/launch/", {}, format="json")
    assert response.status_code == 409
    assert response.json()["reasons"] and "queries" in " ".join(response.json()["reasons"])
    draft.refresh_from_db()
    assert draft.status == "draft"


def test_dashboard_numbers_and_analysis(people, draft):
    base = f"/api/studies/{draft.slug}/"
    api_for(people.owner).post(base + "launch/", {}, format="json")
    participant = join_study(study=draft, external_id="p1", recruitment={})
    give_consent(participant=participant)
    dashboard = api_for(people.viewer).get(base + "dashboard/")
    assert dashboard.status_code == 200
    numbers = dashboard.json()
    assert numbers["funnel"]["joined"] == 1 and numbers["slots"]["claimed"] == 1
    assert api_for(people.other).get(base + "dashboard/").status_code == 404
    viewer = api_for(people.viewer)
    empty = viewer.get(base + "analysis/").json()
    assert empty["result"] is None and empty["report"] is None
    assert viewer.get(base + "analysis/?inclusion=some").status_code == 400
    AnalysisResult.objects.create(
        study=draft, status="done", report={"meta": {"n_ratings": 0}}, n_ratings=0
    )
    AnalysisResult.objects.filter(study=draft).update(finished_at=draft.created_at)
    latest = viewer.get(base + "analysis/").json()
    assert latest["report"] == {"meta": {"n_ratings": 0}} and latest["result"]["status"] == "done"
    response = viewer.post(base + "analysis/", {"inclusion": "all"}, format="json")
    assert response.status_code == 202 and response.json()["inclusion"] == "all"
    assert AuditEvent.objects.filter(study=draft, action="study_launched").exists()
