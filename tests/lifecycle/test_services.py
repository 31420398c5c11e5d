"""Lifecycle services: pilot and full launch, more slots, close, archive and delete."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from annotation.models import Participant, Rating, Slot, SlotItem, Trial
from studies import lifecycle, services
from studies.errors import LaunchRefused, StudyStateError
from studies.models import AuditEvent, Query, Study
from tests.lifecycle.participants import complete, consent

pytestmark = pytest.mark.django_db


def cells(study: Study) -> Counter:
    return Counter(
        cell["refusal_strategy"]
        for cell in Slot.objects.filter(study=study).values_list("cell", flat=True)
    )


def test_pilot_then_full_launch_flags_only_pilot_participants(make_study):
    study = make_study(launch=False, target_participants=8)
    assert lifecycle.launch_study(study=study, actor=None, pilot_slots=3) == 3
    study.refresh_from_db()
    assert (study.status, study.pilot_slots) == ("live", 3)
    assert list(Slot.objects.filter(study=study).values_list("is_pilot", flat=True)) == [True] * 3
    assert lifecycle.awaiting_full_launch(study)
    pilot = complete(study, "pilot-1")
    assert pilot.is_pilot and pilot.status == "completed"
    event = AuditEvent.objects.get(study=study, action="study_launched")
    assert event.detail == {"slots": 3, "pilot": True}

    assert lifecycle.launch_full(study=study) == 5
    study.refresh_from_db()
    assert Slot.objects.filter(study=study).count() == 8
    assert not lifecycle.awaiting_full_launch(study)
    later = consent(study, "full-1")
    assert not later.is_pilot
    assert Participant.objects.get(pk=pilot.pk).is_pilot
    assert AuditEvent.objects.filter(study=study, action="study_full_launched").exists()
    # The pilot and the full launch together are exactly the plan of a straight launch.
    straight = make_study(slug="straight", target_participants=8)
    assert [s.cell for s in Slot.objects.filter(study=study).order_by("index")] == [
        s.cell for s in Slot.objects.filter(study=straight).order_by("index")
    ]
    with pytest.raises(StudyStateError, match="full launch follows a pilot"):
        lifecycle.launch_full(study=straight)


def test_pilot_must_be_smaller_than_the_target(make_study):
    study = make_study(launch=False, target_participants=4)
    with pytest.raises(LaunchRefused, match="not smaller than the target"):
        lifecycle.launch_study(study=study, pilot_slots=4)
    study.refresh_from_db()
    assert study.status == "draft" and not Slot.objects.filter(study=study).exists()


def test_added_slots_keep_the_cells_balanced(make_study):
    study = make_study(target_participants=6)
    assert sorted(cells(study).values()) == [1, 1, 2, 2]
    complete(study, "someone")
    assert lifecycle.add_slots(study=study, count=6) == 6
    study.refresh_from_db()
    assert study.target_participants == 12
    assert sorted(cells(study).values()) == [3, 3, 3, 3]
    assert sorted(Slot.objects.filter(study=study).values_list("index", flat=True)) == list(
        range(12)
    )
    # Every new slot has its full item list, like a slot made at launch.
    assert (
        SlotItem.objects.filter(slot__study=study).count()
        == 12 * SlotItem.objects.filter(slot__study=study, slot__index=0).count()
    )
    event = AuditEvent.objects.get(study=study, action="slots_added")
    assert event.detail == {"slots": 6, "old_target": 6, "new_target": 12}
    # Deterministic given the seed: another study with the same seed gets the same cells.
    twin = make_study(slug="twin", target_participants=12)
    assert [s.cell for s in Slot.objects.filter(study=study).order_by("index")] == [
        s.cell for s in Slot.objects.filter(study=twin).order_by("index")
    ]


def test_slots_cannot_be_added_to_a_draft_or_during_a_pilot(make_study):
    draft = make_study(launch=False, target_participants=4)
    with pytest.raises(StudyStateError, match="live or paused"):
        lifecycle.add_slots(study=draft, count=2)
    lifecycle.launch_study(study=draft, pilot_slots=2)
    with pytest.raises(StudyStateError, match="full launch before adding"):
        lifecycle.add_slots(study=draft, count=2)
    lifecycle.launch_full(study=draft)
    with pytest.raises(StudyStateError, match="between 1 and"):
        lifecycle.add_slots(study=draft, count=0)
    assert Slot.objects.filter(study=draft).count() == 4


def test_status_changes_follow_the_lifecycle_and_are_audited(make_study):
    study = make_study(target_participants=2)
    lifecycle.pause_study(study=study)
    with pytest.raises(StudyStateError, match="only a live study can be paused"):
        lifecycle.pause_study(study=study)
    lifecycle.resume_study(study=study)
    with pytest.raises(StudyStateError, match="Close it first"):
        lifecycle.archive_study(study=study)
    lifecycle.close_study(study=study)
    with pytest.raises(StudyStateError, match="cannot be reopened"):
        lifecycle.close_study(study=study)
    with pytest.raises(StudyStateError):
        lifecycle.resume_study(study=study)
    lifecycle.archive_study(study=study)
    study.refresh_from_db()
    assert study.status == "archived"
    changes = [
        (e.detail["old"], e.detail["new"])
        for e in AuditEvent.objects.filter(study=study, action="status_changed").order_by("pk")
    ]
    assert changes == [
        ("live", "paused"),
        ("paused", "live"),
        ("live", "closed"),
        ("closed", "archived"),
    ]
    # The old entry point still works for commands and older callers.
    other = make_study(slug="other", target_participants=2)
    services.set_study_status(study=other, status=Study.Status.PAUSED)
    assert Study.objects.get(pk=other.pk).status == "paused"


def test_delete_needs_the_typed_name_and_a_closed_study(make_study, caplog):
    study = make_study(target_participants=2)
    complete(study, "done-1")
    consent(study, "busy-1")
    with pytest.raises(StudyStateError, match="Close it first"):
        lifecycle.delete_study(study=study, confirm=study.slug)
    lifecycle.close_study(study=study)
    with pytest.raises(StudyStateError, match="exactly to confirm"):
        lifecycle.delete_study(study=study, confirm="refusal perception")
    assert Study.objects.filter(pk=study.pk).exists()
    with caplog.at_level(logging.WARNING, logger="studies.lifecycle"):
        lifecycle.delete_study(study=study, confirm=study.slug)
    assert not Study.objects.filter(slug=study.slug).exists()
    for model in (Participant, Slot, SlotItem, Trial, Rating, Query, AuditEvent):
        assert not model.objects.exists(), model
    assert "refusal-perception" in caplog.text and "deleted by system" in caplog.text
