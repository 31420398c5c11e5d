"""The live dashboard: its numbers reconcile, say what they count, and reach the page."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from annotation import services as annotation_services
from annotation.models import Participant, Slot
from studies import lifecycle
from studies.dashboard import FUNNEL_STATES, dashboard_figures, dashboard_numbers
from studies.models import StudyMembership
from tests.lifecycle.participants import answer_pages, complete, consent

pytestmark = pytest.mark.django_db


def release(participant: Participant, status: str) -> None:
    """Set a state no participant page leads to here (returned, screened out), freeing the slot."""
    Slot.objects.filter(pk=participant.slot_id).update(status="free", claimed_at=None)
    Participant.objects.filter(pk=participant.pk).update(status=status, slot=None)


@pytest.fixture
def busy_study(make_study):
    """Participants in every state: 2 completed (one failed a check), 1 half-way, 1 not yet
    consented, 1 declined, 1 returned, 1 timed out, 1 excluded."""
    study = make_study(target_participants=8)
    complete(study, "done-ok")
    complete(study, "done-careless", attention_ok=False)
    answer_pages(consent(study, "halfway"), pages=3)
    annotation_services.join_study(study=study, external_id="reading", recruitment={})
    annotation_services.decline_consent(
        participant=annotation_services.join_study(study=study, external_id="no", recruitment={})
    )
    release(consent(study, "gone"), "returned")
    late = consent(study, "late")
    Participant.objects.filter(pk=late.pk).update(
        consented_at=timezone.now() - timedelta(minutes=study.time_limit_minutes + 1)
    )
    annotation_services.expire_overdue_participants(study=study)
    release(consent(study, "screened"), "screened_out")
    return study


def test_funnel_numbers_add_up_and_say_what_they_count(busy_study):
    numbers = dashboard_numbers(busy_study)
    funnel = numbers["funnel"]
    assert funnel == {
        "not_consented": 1,
        "in_progress": 1,
        "completed": 2,
        "returned": 1,
        "timed_out": 1,
        "declined": 1,
        "screened_out": 1,
        "withdrawn": 0,
        "joined": 8,
        "consented": 6,
        "completion_rate": round(2 / 6, 3),
    }
    states = numbers["funnel_states"]
    assert [s["key"] for s in states] == [key for key, _, _ in FUNNEL_STATES]
    assert sum(s["count"] for s in states) == funnel["joined"]
    assert funnel["consented"] == funnel["joined"] - funnel["declined"] - funnel["not_consented"]
    assert all(s["definition"] for s in states) and "consented" in numbers["definitions"]
    json.dumps(numbers)  # plain JSON-able data, as the API serves it


def test_cells_times_attention_and_timeline(busy_study):
    numbers = dashboard_numbers(busy_study)
    cells = numbers["cells"]
    assert sum(c["target"] for c in cells) == 8 and len(cells) == 4
    assert sum(c["completed"] for c in cells) == 2
    assert sum(c["claimed"] for c in cells) == 1  # the one half-way through
    assert numbers["slots"] == {"total": 8, "free": 5, "claimed": 1, "completed": 2}
    assert numbers["completion_minutes"]["n"] == 2
    assert numbers["completion_minutes"]["median"] is not None
    per_item = numbers["time_per_item"]
    # 2 completers answered every page, the half-way one 3 pages.
    pages = Slot.objects.get(study=busy_study, index=0).items.count()
    assert per_item["overall"]["n"] == 2 * pages + 3
    assert [p["position"] for p in per_item["positions"]] == list(range(1, pages + 1))
    attention = numbers["attention"]
    assert attention["participants_failing"] == 1
    assert attention["participants_answered"] == 2
    assert sum(c["failed"] for c in attention["checks"]) == sum(
        1 for _ in attention["checks"]
    )  # the careless one failed every check
    rows = numbers["timeline"]["rows"]
    assert rows[-1]["joined"] == 8 and rows[-1]["completed"] == 2
    figures = dashboard_figures(numbers)
    assert set(figures) == {"timeline", "funnel", "cells", "completion", "items", "attention"}
    assert figures["funnel"]["data"][0]["x"] == [s["count"] for s in numbers["funnel_states"]]


def test_pilot_and_full_participants_are_counted_apart(make_study):
    study = make_study(launch=False, target_participants=4)
    lifecycle.launch_study(study=study, pilot_slots=2)
    complete(study, "pilot-a")
    consent(study, "pilot-b")
    lifecycle.launch_full(study=study)
    complete(study, "full-a")
    groups = {g["group"]: g for g in dashboard_numbers(study)["pilot_vs_full"]}
    assert (groups["pilot"]["joined"], groups["pilot"]["completed"]) == (2, 1)
    assert (groups["full"]["joined"], groups["full"]["completed"]) == (1, 1)


def test_dashboard_on_the_study_page_and_as_json(busy_study):
    users = get_user_model().objects
    viewer = users.create_user("viewer", password="pw-viewer-123")
    stranger = users.create_user("stranger", password="pw-stranger-123")
    StudyMembership.objects.create(study=busy_study, user=viewer, role="viewer")
    client = Client()
    client.force_login(viewer)
    html = client.get(f"/studies/{busy_study.slug}/").content.decode()
    # Plain tables carry every number without JavaScript.
    assert '<td data-count="joined">8</td>' in html
    assert '<td data-count="consented">6</td>' in html
    assert "joined − declined − not yet consented" in html
    assert "refusal_strategy=direct_refusal" in html
    # The figures travel as JSON data; no inline executable script on the page.
    data = re.search(
        r'<script id="dashboard-data" type="application/json">(.*?)</script>', html, re.S
    )
    payload = json.loads(data.group(1))
    assert payload["url"] == f"/studies/{busy_study.slug}/dashboard.json"
    assert set(payload["figures"]) >= {"timeline", "funnel", "cells"}
    scripts = re.findall(r"<script([^>]*)>", html)
    assert all("src=" in attrs or "application/json" in attrs for attrs in scripts)
    assert "vendor/plotly/plotly.min.js" in html and "js/dashboard.js" in html

    response = client.get(f"/studies/{busy_study.slug}/dashboard.json")
    assert response.status_code == 200
    body = response.json()
    assert body["numbers"]["funnel"]["joined"] == 8
    assert '<td data-count="joined">8</td>' in body["tables_html"]
    other = Client()
    other.force_login(stranger)
    assert other.get(f"/studies/{busy_study.slug}/dashboard.json").status_code == 404
    assert Client().get(f"/studies/{busy_study.slug}/dashboard.json").status_code == 302


def test_a_new_completion_shows_on_the_next_refresh(make_study):
    study = make_study(target_participants=2)
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    client = Client()
    client.force_login(owner)
    url = f"/studies/{study.slug}/dashboard.json"
    assert client.get(url).json()["numbers"]["funnel"]["completed"] == 0
    complete(study, "p1")
    assert client.get(url).json()["numbers"]["funnel"]["completed"] == 1
