"""Quality screening end to end: participants driven through the real pages, the beat sweep's
task, exclusion by default under "included", the researcher's decisions, early screen-out."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import F
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation import selectors as annotation_selectors
from annotation.models import Participant, Rating, Slot, SlotItem
from annotation.tasks import screen_finished_participants
from studies.analysis.frame import apply_inclusion
from studies.dashboard import dashboard_numbers
from studies.models import AuditEvent, StudyMembership
from studies.spec.model import (
    AttentionRuleSpec,
    QualitySpec,
    ScreenOutSpec,
    SpeederRuleSpec,
    StraightLiningRuleSpec,
)
from tests.annotation.test_query_budget import SUBMIT_BUDGET
from tests.annotation.test_views import form_fields

pytestmark = pytest.mark.django_db

CORRECT = "3"  # the seed study's attention checks ask for 'Somewhat disagree'


def varied(position: int, index: int) -> str:
    """A careful participant's answers: different values across an item's questions (1 to 5,
    on every scale of the examples)."""
    return str((position * 3 + index * 2) % 5 + 1)


def same_four(position: int, index: int) -> str:
    return "4"


def begin(client: Client, study, pid: str):
    client.get(f"/s/{study.slug}/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=sess-{pid}")
    client.post(f"/s/{study.slug}/consent/", {"decision": "agree"})
    return Participant.objects.get(study=study, recruitment__session=f"sess-{pid}")


def answer_item(client: Client, response, answer, attention: str = CORRECT, queries=None):
    """Submit the item page ``response`` shows (a topic first where asked); ``queries``, a
    list, receives the SQL of the submit itself."""
    url = response.request["PATH_INFO"]
    html = response.content.decode()
    if 'name="topic"' in html:
        topic = re.search(r'name="topic" value="(\d+)"', html).group(1)
        response = client.post(url, {"topic": topic}, follow=True)
        html = response.content.decode()
    position = int(re.search(r"/item/(\d+)/", url).group(1))
    names = sorted(set(re.findall(r'type="radio" name="([\w-]+)"', html)))
    values = {
        name: attention if name.startswith("attention") else answer(position, i)
        for i, name in enumerate(names)
    }
    with CaptureQueriesContext(connection) as captured:
        submitted = client.post(url, {**form_fields(html), **values})
    if queries is not None:
        queries += [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert submitted.status_code == 303, submitted.status_code
    return client.get(submitted["Location"], follow=True)


def take_part(study, pid: str, answer, *, minutes: int = 0):
    """One participant through every page; ``minutes`` moves their consent that far back, as
    if they had spent that long reading (the test cannot wait for it)."""
    client = Client()
    participant = begin(client, study, pid)
    if minutes:
        Participant.objects.filter(pk=participant.pk).update(
            consented_at=F("consented_at") - timedelta(minutes=minutes)
        )
    response = client.post(f"/s/{study.slug}/instructions/", follow=True)
    while "/item/" in response.request["PATH_INFO"]:
        response = answer_item(client, response, answer)
    assert response.request["PATH_INFO"].endswith("/done/"), response.request["PATH_INFO"]
    participant.refresh_from_db()
    assert participant.status == "completed"
    return participant


def researcher(study):
    user = get_user_model().objects.create_user("quality-owner", password="pw-quality-123")
    StudyMembership.objects.create(study=study, user=user, role=StudyMembership.Role.OWNER)
    client = Client()
    client.force_login(user)
    return user, client


def exported_ids(client: Client, study, include: str) -> set[str]:
    response = client.get(f"/studies/{study.slug}/results/{include}/ratings.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    return {row["participant_id"] for row in csv.DictReader(io.StringIO(text))}


def test_a_speeder_and_a_straight_liner_are_flagged_excluded_and_counted(make_study):
    rules = QualitySpec(
        speeders=SpeederRuleSpec(enabled=True, min_seconds=0, min_fraction_of_median=0.3),
        straight_lining=StraightLiningRuleSpec(enabled=True, min_items=4),
    )
    study = make_study(target_participants=6, quality=rules)
    careful = [take_part(study, f"careful-{i}", varied, minutes=10) for i in range(3)]
    straight = take_part(study, "straight", same_four, minutes=10)
    speeder = take_part(study, "speeder", varied)

    # Nothing is judged inside the participants' requests: the beat sweep's task does it.
    assert not Participant.objects.filter(study=study).exclude(flags=[]).exists()
    assert screen_finished_participants() == 5
    for p in (*careful, straight, speeder):
        p.refresh_from_db()
    assert [p.flags for p in careful] == [[], [], []]
    assert not any(p.excluded for p in careful)
    assert straight.flags == [
        {
            "rule": "straight_lining",
            "reason": "answered 4 to every question of 8 consecutive items (items 1–8)",
        }
    ]
    (flag,) = speeder.flags
    assert flag["rule"] == "speeders"
    assert re.fullmatch(
        r"finished in [\d.]+ s, under 0\.3 × the median 6\d\d(\.\d)? s", flag["reason"]
    )
    assert straight.excluded and speeder.excluded and straight.status == "completed"
    # A second sweep finds nobody new.
    assert screen_finished_participants() == 0

    user, client = researcher(study)
    ids = {p.pk: p.pseudonym[:16] for p in (*careful, straight, speeder)}
    included = exported_ids(client, study, "included")
    assert included == {ids[p.pk] for p in careful}
    assert exported_ids(client, study, "all") == set(ids.values())
    assert exported_ids(client, study, "completed") == set(ids.values())
    # The analysis frame applies the same rule to an export of everyone.
    frame = pd.DataFrame(annotation_selectors.ratings_long_format(study, "all"))
    assert set(apply_inclusion(frame, "included")["participant_id"]) == included

    quality = dashboard_numbers(study)["quality"]
    assert (quality["flagged"], quality["excluded"], quality["kept"]) == (2, 2, 0)
    per_rule = {r["rule"]: r["count"] for r in quality["rules"]}
    assert per_rule["speeders"] == 1 and per_rule["straight_lining"] == 1
    tables = client.get(f"/studies/{study.slug}/dashboard.json").json()["tables_html"]
    assert '<strong data-count="excluded">2</strong>' in tables
    results = client.get(f"/studies/{study.slug}/results/").content.decode()
    assert "2 completed participants excluded" in results and "left out here" in results
    page = client.get(f"/studies/{study.slug}/participants/?flag=flagged").content.decode()
    assert "answered 4 to every question of 8 consecutive items" in page
    assert page.count('id="participant-') == 2

    # The researcher keeps the straight-liner (an override): included again, audited.
    response = client.post(
        f"/studies/{study.slug}/participants/{straight.pk}/decide/",
        {"decision": "keep", "reason": "a real opinion: the responses were alike"},
    )
    assert response.status_code == 302
    straight.refresh_from_db()
    assert (straight.exclusion_decision, straight.excluded) == ("kept", False)
    assert straight.flags  # the flag stays on record beside the decision
    assert exported_ids(client, study, "included") == {ids[p.pk] for p in (*careful, straight)}
    kept = AuditEvent.objects.get(study=study, action="participant_kept")
    assert kept.actor == user and kept.detail["participant"] == straight.pseudonym
    assert kept.detail["flags"] == ["straight_lining"]

    # The speeder's exclusion is confirmed, with a replacement slot in the same cell.
    slots_before = Slot.objects.filter(study=study).count()
    client.post(
        f"/studies/{study.slug}/participants/{speeder.pk}/decide/",
        {"decision": "exclude", "reason": "too fast to have read", "replace": "on"},
    )
    speeder.refresh_from_db()
    assert (speeder.exclusion_decision, speeder.excluded, speeder.status) == (
        "excluded",
        True,
        "completed",
    )
    new = Slot.objects.filter(study=study).order_by("-index").first()
    assert Slot.objects.filter(study=study).count() == slots_before + 1
    assert (new.status, new.cell) == ("free", speeder.slot.cell)
    copied = list(SlotItem.objects.filter(slot=new).values_list("position", "kind", "levels"))
    assert copied == list(
        SlotItem.objects.filter(slot=speeder.slot).values_list("position", "kind", "levels")
    )
    excluded = AuditEvent.objects.get(study=study, action="participant_excluded")
    assert excluded.detail["replacement_slot"] == new.index

    # Running the checks again keeps both decisions.
    client.post(f"/studies/{study.slug}/participants/quality-checks/")
    straight.refresh_from_db()
    speeder.refresh_from_db()
    assert (straight.excluded, speeder.excluded) == (False, True)
    quality = dashboard_numbers(study)["quality"]
    assert (quality["excluded"], quality["kept"], quality["confirmed"]) == (1, 1, 1)


def test_a_decision_without_a_reason_changes_nothing(make_study):
    study = make_study(
        target_participants=2,
        quality=QualitySpec(
            speeders=SpeederRuleSpec(enabled=True, min_seconds=3600, min_fraction_of_median=0)
        ),
    )
    participant = take_part(study, "quick", varied)
    screen_finished_participants()
    participant.refresh_from_db()
    assert participant.excluded
    _user, client = researcher(study)
    response = client.post(
        f"/studies/{study.slug}/participants/{participant.pk}/decide/",
        {"decision": "keep", "reason": "  "},
        follow=True,
    )
    assert "Nothing changed" in response.content.decode()
    participant.refresh_from_db()
    assert (participant.exclusion_decision, participant.excluded) == ("", True)
    assert not AuditEvent.objects.filter(study=study, action="participant_kept").exists()


def test_early_screen_out_ends_the_participant_with_the_screen_out_code(make_study):
    rules = QualitySpec(
        attention_checks=AttentionRuleSpec(enabled=True, min_failed=2),
        screen_out=ScreenOutSpec(
            enabled=True, code="SCREEN-OUT-9", url="https://example.org/screened-out"
        ),
    )
    study = make_study(target_participants=2, quality=rules)
    client = Client()
    participant = begin(client, study, "inattentive")
    response = client.post(f"/s/{study.slug}/instructions/", follow=True)
    failed_pages = 0
    while "/item/" in response.request["PATH_INFO"]:
        url = response.request["PATH_INFO"]
        is_check = 'name="attention_' in response.content.decode()
        queries: list[str] = []
        response = answer_item(client, response, varied, attention="1", queries=queries)
        failed_pages += is_check
        if is_check and failed_pages == 1:
            # One failed check of the two allowed: the participant goes on.
            assert "/item/" in response.request["PATH_INFO"], url
        if is_check:
            # The failing submit, screen-out included, stays within the participant path's
            # budget (tests/annotation/test_query_budget.py).
            assert len(queries) <= SUBMIT_BUDGET, queries
    assert failed_pages == 2
    assert response.request["PATH_INFO"] == f"/s/{study.slug}/ended/"
    html = response.content.decode()
    assert "SCREEN-OUT-9" in html and 'href="https://example.org/screened-out"' in html
    assert study.completion_code not in html and 'id="completion-code"' not in html
    participant.refresh_from_db()
    assert participant.status == "screened_out" and participant.slot_id is None
    assert participant.flags == [
        {"rule": "attention_checks", "reason": "failed 2 of 2 attention checks"}
    ]
    assert participant.excluded
    # Their slot went back for someone else, and they cannot go on.
    assert Slot.objects.filter(study=study, status="free").count() == 2
    stored = Rating.objects.filter(participant=participant).count()
    for url in (f"/s/{study.slug}/item/8/", f"/s/{study.slug}/done/", f"/s/{study.slug}/"):
        assert client.get(url, follow=True).request["PATH_INFO"] == f"/s/{study.slug}/ended/"
    client.post(f"/s/{study.slug}/item/8/", {"helpfulness": "4"})
    assert Rating.objects.filter(participant=participant).count() == stored
    # Not counted as completed under any rule that needs completion.
    assert not annotation_selectors.counted_participants(study, "completed").exists()


def test_without_screen_out_a_failed_check_does_not_end_the_session(make_study):
    rules = QualitySpec(attention_checks=AttentionRuleSpec(enabled=True, min_failed=1))
    study = make_study(target_participants=2, quality=rules)
    client = Client()
    participant = begin(client, study, "goes-on")
    response = client.post(f"/s/{study.slug}/instructions/", follow=True)
    while "/item/" in response.request["PATH_INFO"]:
        response = answer_item(client, response, varied, attention="1")
    assert response.request["PATH_INFO"].endswith("/done/")
    participant.refresh_from_db()
    assert participant.status == "completed" and participant.flags == []
    screen_finished_participants()
    participant.refresh_from_db()
    assert participant.flags == [
        {"rule": "attention_checks", "reason": "failed 2 of 2 attention checks"}
    ]
