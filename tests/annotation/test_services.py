"""Participant-side services on the real PostgreSQL: joining, slots, recording, time-outs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.errors import AnswersInvalid, StudyFull
from annotation.models import Participant, Rating, Slot, SlotItem, Trial

pytestmark = pytest.mark.django_db


def answers_for(item: SlotItem) -> dict[str, str]:
    return {q.key: str(q.correct_value or 4) for q in services.item_questions(item)}


def open_item(participant: Participant, position: int) -> Trial:
    participant.refresh_from_db()
    trial = services.show_item(participant=participant, position=position)
    if trial is None:  # topic mode: take the first topic still on offer
        item = SlotItem.objects.get(slot_id=participant.slot_id, position=position)
        used = Trial.objects.filter(participant=participant, query__isnull=False).values("query")
        query = (
            participant.study.queries.filter(category=item.category).exclude(pk__in=used).first()
        )
        trial = services.choose_topic(participant=participant, position=position, query_pk=query.pk)
    return trial


def complete(participant: Participant) -> Participant:
    while participant.status == Participant.Status.ACTIVE:
        trial = open_item(participant, participant.position)
        outcome = services.record_answers(
            participant=participant,
            position=participant.position,
            raw_answers=answers_for(trial.slot_item),
            submission_id=uuid.uuid4(),
        )
        participant = outcome.participant
    return participant


def test_reopening_a_link_finds_the_same_participant(make_study):
    study = make_study(target_participants=4)
    first = services.join_study(study=study, external_id="PID-1", recruitment={})
    again = services.join_study(study=study, external_id=" PID-1 ", recruitment={})
    assert first.pk == again.pk
    assert Participant.objects.filter(study=study).count() == 1
    assert "PID-1" not in first.pseudonym


def test_pseudonyms_differ_between_studies(make_study, every_type_spec):
    a = make_study(target_participants=4)
    b = make_study(target_participants=5, base=every_type_spec)
    pa = services.join_study(study=a, external_id="PID-1", recruitment={})
    pb = services.join_study(study=b, external_id="PID-1", recruitment={})
    assert pa.pseudonym != pb.pseudonym


def test_consent_claims_lowest_free_slot_once(make_study):
    study = make_study(target_participants=4)
    p = services.join_study(study=study, external_id="PID-1", recruitment={})
    slot = services.give_consent(participant=p)
    assert slot.index == 0
    assert services.give_consent(participant=p).pk == slot.pk
    assert Slot.objects.filter(study=study, status=Slot.Status.CLAIMED).count() == 1


def test_full_study_refuses_a_new_consent(make_study):
    study = make_study(target_participants=2)
    for n in range(2):
        services.give_consent(
            participant=services.join_study(study=study, external_id=f"P{n}", recruitment={})
        )
    late = services.join_study(study=study, external_id="late", recruitment={})
    with pytest.raises(StudyFull):
        services.give_consent(participant=late)


def test_completing_every_item_stores_one_rating_per_question_and_finishes(make_study):
    study = make_study(target_participants=4)
    p = services.join_study(study=study, external_id="PID-1", recruitment={})
    services.give_consent(participant=p)
    p = complete(p)
    assert p.status == Participant.Status.COMPLETED
    assert p.slot.status == Slot.Status.COMPLETED
    n_questions = study.questions.filter(is_attention_check=False).count()
    n_checks = study.questions.filter(is_attention_check=True).count()
    expected = study.items_per_participant * n_questions + n_checks
    assert Rating.objects.filter(participant=p).count() == expected
    # Topic mode: the participant never saw a query twice.
    queries = list(
        Trial.objects.filter(participant=p).exclude(query=None).values_list("query", flat=True)
    )
    assert len(queries) == len(set(queries)) == study.items_per_participant


def test_duplicate_submission_stores_one_rating(make_study):
    study = make_study(target_participants=4)
    p = services.join_study(study=study, external_id="PID-1", recruitment={})
    services.give_consent(participant=p)
    trial = open_item(p, 1)
    submission = uuid.uuid4()
    kwargs = dict(position=1, raw_answers=answers_for(trial.slot_item), submission_id=submission)
    first = services.record_answers(participant=p, **kwargs)
    second = services.record_answers(participant=p, **kwargs)
    assert (first.status, second.status) == ("stored", "duplicate")
    # A second tab submitting the same page with its own id is stale, not stored again.
    third = services.record_answers(participant=p, **{**kwargs, "submission_id": uuid.uuid4()})
    assert third.status == "stale"
    assert Rating.objects.filter(trial=trial).count() == len(kwargs["raw_answers"])
    assert third.participant.position == 2


def test_invalid_answers_store_nothing_and_keep_position(make_study):
    study = make_study(target_participants=4)
    p = services.join_study(study=study, external_id="PID-1", recruitment={})
    services.give_consent(participant=p)
    trial = open_item(p, 1)
    answers = answers_for(trial.slot_item)
    answers[next(iter(answers))] = "9"
    with pytest.raises(AnswersInvalid) as caught:
        services.record_answers(
            participant=p, position=1, raw_answers=answers, submission_id=uuid.uuid4()
        )
    assert list(caught.value.errors) == [next(iter(answers))]
    assert Rating.objects.count() == 0
    p.refresh_from_db()
    assert p.position == 1


def test_timed_out_slot_is_released_and_reused(make_study):
    study = make_study(target_participants=1, time_limit_minutes=30)
    slow = services.join_study(study=study, external_id="slow", recruitment={})
    slot = services.give_consent(participant=slow)
    Participant.objects.filter(pk=slow.pk).update(
        consented_at=timezone.now() - timedelta(minutes=31)
    )
    fresh = services.join_study(study=study, external_id="fresh", recruitment={})
    assert services.give_consent(participant=fresh).pk == slot.pk
    slow.refresh_from_db()
    assert slow.status == Participant.Status.TIMED_OUT
    assert slow.slot is None


def test_periodic_sweep_times_out_only_overdue_participants(make_study):
    study = make_study(target_participants=3, time_limit_minutes=10)
    on_time, late = (
        services.join_study(study=study, external_id=pid, recruitment={}) for pid in ("a", "b")
    )
    services.give_consent(participant=on_time)
    services.give_consent(participant=late)
    Participant.objects.filter(pk=late.pk).update(consented_at=timezone.now() - timedelta(hours=1))
    assert services.release_expired_slots() == 1
    assert Participant.objects.get(pk=on_time.pk).status == Participant.Status.ACTIVE
    assert Participant.objects.get(pk=late.pk).status == Participant.Status.TIMED_OUT
    assert Slot.objects.filter(study=study, status=Slot.Status.FREE).count() == 2


def test_declining_frees_the_slot(make_study):
    study = make_study(target_participants=1)
    p = services.join_study(study=study, external_id="a", recruitment={})
    services.give_consent(participant=p)
    services.decline_consent(participant=p)
    assert Slot.objects.get(study=study).status == Slot.Status.FREE
    assert Participant.objects.get(pk=p.pk).status == Participant.Status.DECLINED


def test_topic_must_come_from_the_items_category_and_be_unused(make_study):
    study = make_study(target_participants=2)
    p = services.join_study(study=study, external_id="a", recruitment={})
    services.give_consent(participant=p)
    p.refresh_from_db()
    item = SlotItem.objects.get(slot_id=p.slot_id, position=1)
    other = study.queries.exclude(category=item.category).first()
    from annotation.errors import TopicInvalid

    with pytest.raises(TopicInvalid):
        services.choose_topic(participant=p, position=1, query_pk=other.pk)
    assert not Trial.objects.filter(participant=p).exists()
