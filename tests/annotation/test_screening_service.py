"""Screening runs on participants who took part through the pages: duplicates by device and by
session id, questions left blank, which studies the sweep reads, and the API."""

from __future__ import annotations

import pytest
from django.test import Client

from annotation import services
from annotation.models import Participant
from annotation.tasks import screen_finished_participants
from studies.models import AuditEvent, Study
from studies.spec.model import (
    BlankItemsRuleSpec,
    DuplicateRuleSpec,
    QualitySpec,
)
from tests.datasets.test_quality_screening import answer_item, varied

pytestmark = pytest.mark.django_db

PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148 Safari/604.1"
DEMOGRAPHICS = {"age_group": "25–34", "chatbot_days": "3", "ai_trust": "4"}  # ai_tools left out


def take_part(study: Study, pid: str, *, session: str, agent: str = PHONE, address: str):
    """Through every page of the every-type study; optional block questions left blank."""
    client = Client(HTTP_USER_AGENT=agent, REMOTE_ADDR=address)
    client.get(f"/s/{study.slug}/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID={session}")
    client.post(f"/s/{study.slug}/consent/", {"decision": "agree"})
    response = client.post(f"/s/{study.slug}/instructions/", follow=True)
    for _page in range(40):  # far more pages than the study has: a refused page fails
        path = response.request["PATH_INFO"]
        if "/block/demographics/" in path:
            response = client.post(path, DEMOGRAPHICS, follow=True)
        elif "/block/final_comment/" in path:
            response = client.post(path, {"comment": ""}, follow=True)
        elif "/item/" in path:
            response = answer_item(client, response, varied)
        else:
            break
    assert path.endswith("/done/"), path
    return Participant.objects.filter(study=study).order_by("-pk").first()


def test_duplicates_by_device_and_by_session_id(make_study, every_type_spec):
    rules = QualitySpec(duplicates=DuplicateRuleSpec(enabled=True))
    study = make_study(base=every_type_spec, target_participants=8, quality=rules)
    first = take_part(study, "a", session="s-1", address="203.0.113.5")
    # Another person on another network: no duplicate.
    other = take_part(study, "b", session="s-2", address="198.51.100.5")
    # Same phone model and browser on the first one's /24: the same device key.
    same_device = take_part(study, "c", session="s-3", address="203.0.113.99")
    # A new participant id but the recruitment session id of the second.
    same_session = take_part(study, "d", session="s-2", address="192.0.2.1")
    assert screen_finished_participants() == 4
    flags = {p.pk: Participant.objects.get(pk=p.pk).flags for p in (first, other, same_device)}
    assert flags[first.pk] == [] and flags[other.pk] == []
    assert flags[same_device.pk] == [
        {
            "rule": "duplicates",
            "reason": f"the same device as participant {first.pseudonym[:10]}, who came earlier",
        }
    ]
    (flag,) = Participant.objects.get(pk=same_session.pk).flags
    assert flag["reason"] == (
        f"the same recruitment session id as participant {other.pseudonym[:10]}, who came earlier"
    )


def test_questions_left_blank_count_per_participant(make_study, every_type_spec):
    study = make_study(
        base=every_type_spec,
        target_participants=2,
        quality=QualitySpec(blank_items=BlankItemsRuleSpec(enabled=True, max_blank=1)),
    )
    participant = take_part(study, "blank", session="s-9", address="203.0.113.5")
    outcome = services.screen_participants(study=study)
    assert (outcome.screened, outcome.flagged, outcome.excluded) == (1, 1, 1)
    participant.refresh_from_db()
    # ai_tools (demographics) and the final comment: optional, left blank.
    assert participant.flags == [
        {"rule": "blank_items", "reason": "left 2 questions blank (more than the 1 allowed)"}
    ]
    audit = AuditEvent.objects.get(study=study, action="quality_screened")
    assert audit.detail["rules"]["blank_items"] == 1 and audit.detail["screened"] == 1


def test_the_sweep_leaves_studies_without_rules_alone(make_study):
    study = make_study(target_participants=2)
    participant = Participant.objects.create(study=study, pseudonym="p", status="completed")
    assert screen_finished_participants() == 0
    participant.refresh_from_db()
    assert (
        participant.screened_at is None
        and not AuditEvent.objects.filter(action="quality_screened").exists()
    )


def test_a_replacement_needs_a_running_study_and_a_used_slot(make_study):
    study = make_study(target_participants=2)
    participant = Participant.objects.create(study=study, pseudonym="no-slot", status="completed")
    with pytest.raises(ValueError, match="holds no slot"):
        services.exclude_participant(participant=participant, reason="x", replace=True)
    participant.refresh_from_db()
    # Refused as a whole: the decision was not recorded either.
    assert participant.exclusion_decision == "" and not participant.excluded


def test_confirm_all_flagged_decides_only_the_undecided(make_study):
    from django.contrib.auth import get_user_model

    from studies.models import StudyMembership

    study = make_study(target_participants=3)
    flag = [{"rule": "speeders", "reason": "finished in 3 s, under the minimum of 60 s"}]
    undecided = [
        Participant.objects.create(
            study=study, pseudonym=f"u{i}", status="completed", flags=flag, excluded=True
        )
        for i in range(2)
    ]
    kept = Participant.objects.create(
        study=study, pseudonym="k", status="completed", flags=flag, exclusion_decision="kept"
    )
    clean = Participant.objects.create(study=study, pseudonym="c", status="completed")
    user = get_user_model().objects.create_user("bulk", password="pw-bulk-123")
    StudyMembership.objects.create(study=study, user=user, role="editor")
    client = Client()
    client.force_login(user)
    url = f"/studies/{study.slug}/participants/confirm-flagged/"
    response = client.post(url, {"reason": ""}, follow=True)
    assert "Nothing changed" in response.content.decode()
    assert not Participant.objects.filter(exclusion_decision="excluded").exists()
    response = client.post(url, {"reason": "speeders, checked by hand"}, follow=True)
    assert "2 flagged participants confirmed as excluded" in response.content.decode()
    decided = dict(Participant.objects.filter(study=study).values_list("pk", "exclusion_decision"))
    assert [decided[p.pk] for p in undecided] == ["excluded", "excluded"]
    assert (decided[kept.pk], decided[clean.pk]) == ("kept", "")
    events = AuditEvent.objects.filter(study=study, action="participant_excluded")
    assert events.count() == 2 and {e.actor for e in events} == {user}


def test_no_replacement_while_the_pilot_runs(make_study):
    from studies import lifecycle
    from tests.lifecycle.participants import complete

    study = make_study(target_participants=3, launch=False)
    lifecycle.launch_study(study=study, pilot_slots=1)
    participant = complete(study, "pilot-1")
    with pytest.raises(ValueError, match="running its pilot"):
        services.exclude_participant(participant=participant, reason="x", replace=True)
    participant.refresh_from_db()
    assert participant.exclusion_decision == ""
    # Without a replacement the decision is taken.
    services.exclude_participant(participant=participant, reason="x")
    participant.refresh_from_db()
    assert participant.exclusion_decision == "excluded"
