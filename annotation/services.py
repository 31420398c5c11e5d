"""Writes of the participant side: slots, joining, consent, trials, ratings and block answers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from annotation import recruitment_ids, selectors
from annotation.answers import parse_answers, parse_block_answers
from annotation.errors import (
    AnswersInvalid,
    ParticipationEnded,
    StudyFull,
    StudyNotOpen,
    TopicInvalid,
)
from annotation.material import slot_item, study_material
from annotation.models import BlockAnswer, Participant, Rating, Slot, SlotItem, Trial
from annotation.pseudonyms import pseudonym_for
from studies.design import PlannedSlot
from studies.domain import STUDY_ARRIVAL_STATUSES
from studies.models import Question, QuestionnaireBlock, Study


@transaction.atomic
def create_slots(
    *,
    study: Study,
    plan: list[PlannedSlot],
    query_pks: dict[str, int],
    is_pilot: bool = False,
) -> int:
    """Store planned slots as free slots; returns how many were created.

    ``plan`` may be the next part of a longer plan (a full launch after a pilot, added
    slots): each slot keeps its plan index. Claiming an ``is_pilot`` slot makes a pilot
    participant.
    """
    checks = {q.key: q.pk for q in study.questions.filter(is_attention_check=True)}
    slots = Slot.objects.bulk_create(
        [
            Slot(study=study, index=planned.index, cell=planned.cell, is_pilot=is_pilot)
            for planned in plan
        ]
    )
    items = []
    for slot, planned in zip(slots, plan, strict=True):
        for item in planned.items:
            items.append(
                SlotItem(
                    slot=slot,
                    position=item.position,
                    kind=item.kind,
                    levels=item.levels,
                    response_type=item.response_type,
                    motivation=item.motivation,
                    query_id=query_pks[item.query_id] if item.query_id else None,
                    category=item.category,
                    attention_check_id=checks[item.attention_check]
                    if item.attention_check
                    else None,
                )
            )
    SlotItem.objects.bulk_create(items, batch_size=2000)
    return len(slots)


def _release_slot(participant: Participant) -> None:
    if participant.slot_id is None:
        return
    Slot.objects.filter(pk=participant.slot_id, status=Slot.Status.CLAIMED).update(
        status=Slot.Status.FREE, claimed_at=None
    )
    participant.slot = None


@transaction.atomic
def expire_overdue_participants(*, study: Study, now: datetime | None = None) -> int:
    """Mark the study's participants past their time limit as timed out and free their slots."""
    cutoff = (now or timezone.now()) - timedelta(minutes=study.time_limit_minutes)
    # Only overdue rows are locked, and locked ones skipped: joiners never queue behind raters.
    overdue = Participant.objects.select_for_update(skip_locked=True).filter(
        study=study, status=Participant.Status.ACTIVE, consented_at__lte=cutoff
    )
    expired = 0
    for participant in overdue:
        _release_slot(participant)
        participant.status = Participant.Status.TIMED_OUT
        participant.save(update_fields=["status", "slot", "last_seen_at"])
        expired += 1
    return expired


def is_overdue(participant: Participant, now: datetime | None = None) -> bool:
    if participant.status != Participant.Status.ACTIVE or participant.consented_at is None:
        return False
    limit = timedelta(minutes=participant.study.time_limit_minutes)
    return participant.consented_at + limit <= (now or timezone.now())


def _time_out(participant: Participant) -> None:
    """Time out a participant whose row the caller has locked."""
    _release_slot(participant)
    participant.status = Participant.Status.TIMED_OUT
    participant.save(update_fields=["status", "slot", "last_seen_at"])


@transaction.atomic
def time_out_participant(*, participant: Participant) -> Participant:
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    if participant.status == Participant.Status.ACTIVE:
        _time_out(participant)
    return participant


def _lock(participant: Participant) -> Participant:
    """Read the participant, with its study, under a row lock (inside the caller's transaction).

    The lock serialises double submits and second tabs of one participant; this one locked
    read is all a page's write needs of the participant. Past the time limit they are timed
    out here, so no answer is taken after it.
    """
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("study")
        .get(pk=participant.pk)
    )
    if is_overdue(participant):
        _time_out(participant)
    return participant


def join_study(
    *,
    study: Study,
    external_id: str | None,
    recruitment: dict,
    device_key: str = "",
    device_class: str = "",
) -> Participant:
    """Find or create the participant for a recruitment id; reopening a link never duplicates.

    ``device_key`` and ``device_class`` (annotation.devices) are stored with a new participant,
    in the same insert, for the duplicate check and the participants table.
    """
    encrypted = ""
    if external_id:
        pseudonym = pseudonym_for(salt=study.pseudonym_salt, external_id=external_id)
        # The raw id only encrypted (approve/pay lists); without a key it is not kept at all.
        if recruitment_ids.recruitment_keys_configured():
            encrypted = recruitment_ids.encrypt_recruitment_id(external_id)
    else:
        pseudonym = "anon-" + uuid.uuid4().hex
    try:
        # The entry page has looked the person up already: a new one is one insert.
        with transaction.atomic():
            participant = Participant.objects.create(
                study=study,
                pseudonym=pseudonym,
                recruitment=recruitment,
                recruitment_id_encrypted=encrypted,
                device_key=device_key,
                device_class=device_class,
            )
    except IntegrityError:
        # They exist (a reopened link, or two tabs racing to create them): use that row.
        participant = Participant.objects.get(study=study, pseudonym=pseudonym)
    participant.study = study
    return participant


@transaction.atomic
def claim_slot(*, participant: Participant, now: datetime | None = None) -> Slot:
    """Give the participant the lowest free slot; concurrent joiners never share one.

    Raises StudyNotOpen when the study takes no new participants, StudyFull when every slot
    is taken and ParticipationEnded for someone who cannot start again.
    """
    now = now or timezone.now()
    participant = _lock(participant)
    if participant.slot_id is not None:
        return participant.slot
    if participant.status not in (
        Participant.Status.ACTIVE,
        Participant.Status.DECLINED,
        Participant.Status.RETURNED,
    ):
        # Timed-out, excluded and finished participants do not get a second run; someone who
        # declined consent and changed their mind may still start.
        raise ParticipationEnded(participant.status)
    if participant.study.status not in STUDY_ARRIVAL_STATUSES:
        raise StudyNotOpen(participant.study.slug)
    slot = (
        Slot.objects.select_for_update(skip_locked=True)
        .filter(study_id=participant.study_id, status=Slot.Status.FREE)
        .order_by("index")
        .first()
    )
    if slot is None:
        raise StudyFull(participant.study.slug)
    slot.status = Slot.Status.CLAIMED
    slot.claimed_at = now
    slot.save(update_fields=["status", "claimed_at"])
    participant.slot = slot
    participant.is_pilot = slot.is_pilot
    participant.status = Participant.Status.ACTIVE
    participant.position = 1
    participant.consented_at = now
    participant.instructions_read_at = None
    participant.save()
    return slot


def give_consent(*, participant: Participant) -> Slot:
    """Record consent and claim a slot; when none is free, the slots of timed-out participants
    are freed first (lazily, so the common case does no sweep)."""
    try:
        return claim_slot(participant=participant)
    except StudyFull:
        study = participant.study
        if expire_overdue_participants(study=study) == 0:
            raise
        return claim_slot(participant=participant)


@transaction.atomic
def decline_consent(*, participant: Participant) -> Participant:
    """The participant said no at the consent page: free any slot, keep nothing else."""
    participant = _lock(participant)
    if participant.status != Participant.Status.ACTIVE or participant.instructions_read_at:
        # Finished, ended or already rating: the consent page is behind them.
        return participant
    _release_slot(participant)
    participant.status = Participant.Status.DECLINED
    participant.consented_at = None
    participant.save()
    return participant


@transaction.atomic
def mark_instructions_read(*, participant: Participant) -> Participant:
    participant = _lock(participant)
    if (
        participant.status == Participant.Status.ACTIVE
        and participant.slot_id is not None
        and participant.instructions_read_at is None
    ):
        participant.instructions_read_at = timezone.now()
        participant.save(update_fields=["instructions_read_at", "last_seen_at"])
    return participant


def _slot_item(participant: Participant, position: int) -> SlotItem:
    return slot_item(participant.slot_id, position)


def _new_trial(participant: Participant, item: SlotItem, query_pk: int | None) -> Trial:
    """Open the item's trial; a second tab that opened it first keeps its own (and its time)."""
    variant = (
        study_material(participant.study).variants.get((query_pk, item.response_type))
        if query_pk
        else None
    )
    trial = Trial(
        participant=participant,
        slot_item=item,
        position=item.position,
        query_id=query_pk,
        variant=variant,
        shown_at=timezone.now(),
    )
    # One statement for a first view, the common case: insert unless the page was opened.
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {Trial._meta.db_table}"
            " (participant_id, slot_item_id, position, query_id, variant_id, shown_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (participant_id, position) DO NOTHING RETURNING id",
            [
                participant.pk,
                item.pk,
                item.position,
                query_pk,
                variant.pk if variant else None,
                trial.shown_at,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return Trial.objects.get(participant=participant, position=item.position)
    trial.pk = row[0]
    trial._state.adding = False
    trial._state.db = connection.alias
    return trial


@transaction.atomic
def show_item(*, participant: Participant, position: int) -> Trial | None:
    """Open the trial for an item (first view time is kept); None while a topic must be picked."""
    item = _slot_item(participant, position)
    trial = Trial.objects.filter(participant=participant, position=position).first()
    if trial is not None:
        return trial
    if selectors.needs_topic(item):
        return None
    return _new_trial(participant, item, item.query_id)


@transaction.atomic
def choose_topic(*, participant: Participant, position: int, query_pk: int) -> Trial:
    """Record the topic a participant picked; the item then shows that topic's query."""
    participant = _lock(participant)
    if participant.status != Participant.Status.ACTIVE or position != participant.position:
        raise TopicInvalid(query_pk)
    existing = Trial.objects.filter(participant=participant, position=position).first()
    if existing is not None:
        return existing
    item = _slot_item(participant, position)
    offered = {q.pk for q in study_material(participant.study).topics.get(item.category, ())}
    if not selectors.needs_topic(item) or query_pk not in offered:
        raise TopicInvalid(query_pk)
    if selectors.queries_seen(participant).filter(query_id=query_pk).exists():
        raise TopicInvalid(query_pk)
    return _new_trial(participant, item, query_pk)


def item_questions(item: SlotItem, study: Study | None = None) -> list[Question]:
    """The questions under a rated item: the study's rating questions, or its attention check."""
    kept = study_material(study or item.slot.study)
    if item.kind == SlotItem.Kind.ATTENTION:
        return [kept.attention_checks[item.attention_check_id]]
    # Block questions belong to their block's page, never under a rated item.
    return list(kept.item_questions)


@dataclass(frozen=True)
class RecordOutcome:
    status: Literal["stored", "duplicate", "stale"]
    participant: Participant


@transaction.atomic
def record_answers(
    *,
    participant: Participant,
    position: int,
    raw_answers: dict[str, str],
    submission_id: uuid.UUID,
    client_ms: int | None = None,
) -> RecordOutcome:
    """Store one page of answers with the participant's progress, exactly once."""
    participant = _lock(participant)
    # One read finds both this page's trial and any earlier use of the submission id.
    trials = list(
        Trial.objects.filter(
            Q(participant=participant, position=position) | Q(submission_id=submission_id)
        )
    )
    if any(t.submission_id == submission_id for t in trials):
        return RecordOutcome("duplicate", participant)
    if participant.status != Participant.Status.ACTIVE or position != participant.position:
        return RecordOutcome("stale", participant)
    trial = next((t for t in trials if t.participant_id == participant.pk), None)
    if trial is None:
        # Answers for a page that was never shown (e.g. a topic not picked yet) are not accepted.
        return RecordOutcome("stale", participant)
    item = _slot_item(participant, position)
    questions = item_questions(item, participant.study)
    parsed = parse_answers(questions, raw_answers)
    if not parsed.ok:
        raise AnswersInvalid(parsed.errors)
    now = timezone.now()
    by_key = {q.key: q for q in questions}
    server_ms = int((now - trial.shown_at).total_seconds() * 1000) if trial.shown_at else None
    trial.answered_at = now
    trial.ms_on_page = client_ms if client_ms is not None and client_ms >= 0 else server_ms
    trial.submission_id = submission_id
    participant.position = position + 1
    screen_out = _screen_out_flag(participant, item, questions, parsed.values)
    finished = (
        screen_out is None
        and position >= selectors.item_count(participant)
        and not _after_blocks_pending(participant)
    )
    if finished:
        _mark_finished(participant, now)
    elif screen_out is not None:
        participant.status = Participant.Status.SCREENED_OUT
        participant.flags = [screen_out]
        participant.screened_at = now
        participant.excluded = _effective_exclusion(participant)
    _store_page(
        participant,
        trial,
        [(by_key[key].pk, value) for key, value in parsed.values.items()],
        now=now,
        finished=finished,
        screened_out=screen_out is not None,
    )
    return RecordOutcome("stored", participant)


def _screen_out_flag(
    participant: Participant, item: SlotItem, questions: list[Question], values: dict[str, int]
) -> dict | None:
    """The attention-check flag that ends the participant now (the study's early screen-out),
    else None. Costs one query, and only on a failed check of a study with screen-out on."""
    if item.kind != SlotItem.Kind.ATTENTION:
        return None
    rules = participant.study.quality or {}
    attention = rules.get("attention_checks") or {}
    if not ((rules.get("screen_out") or {}).get("enabled") and attention.get("enabled")):
        return None
    check = questions[0]
    value = values.get(check.key)
    if value is None or value == check.correct_value:
        return None
    from studies.datasets.quality import ParticipantRecord, attention_flag
    from studies.spec.model import AttentionRuleSpec

    answered, failed = selectors.attention_results(participant)
    answered, failed = answered + 1, failed + 1  # with this page's answer
    record = ParticipantRecord(
        key=participant.pk,
        label="",
        order=participant.pk,
        attention=(False,) * failed + (True,) * (answered - failed),
    )
    return attention_flag(record, AttentionRuleSpec(**attention))


def _store_page(
    participant: Participant,
    trial: Trial,
    ratings: list[tuple[int, int]],
    *,
    now: datetime,
    finished: bool,
    screened_out: bool = False,
) -> None:
    """Write one answered page in one statement: its ratings, the trial's answer time and
    submission id, the participant's progress and, on the last page, the used-up slot
    (screened out: the slot given back, the flag stored).

    The submit is the hottest write of a study; as separate ORM statements it costs four
    round trips and their query building, most of a submit's time on the server.
    """
    tables = {m: m._meta.db_table for m in (Rating, Trial, Participant, Slot)}
    parts, params = [], []
    if ratings:
        rows = ", ".join(["(%s, %s, %s, %s, %s)"] * len(ratings))
        parts.append(
            f"rated AS (INSERT INTO {tables[Rating]}"
            f" (participant_id, trial_id, question_id, value, created_at) VALUES {rows})"
        )
        for question_pk, value in ratings:
            params += [participant.pk, trial.pk, question_pk, value, now]
    parts.append(
        f"answered AS (UPDATE {tables[Trial]}"
        " SET answered_at = %s, ms_on_page = %s, submission_id = %s WHERE id = %s)"
    )
    params += [trial.answered_at, trial.ms_on_page, trial.submission_id, trial.pk]
    if finished:
        parts.append(f"used AS (UPDATE {tables[Slot]} SET status = %s WHERE id = %s)")
        params += [Slot.Status.COMPLETED, participant.slot_id]
    progress = "position = %s, last_seen_at = %s, status = %s, completed_at = %s"
    params += [participant.position, now, participant.status, participant.completed_at]
    if screened_out:
        # The slot goes back, for someone else to take (like a timed-out participant's).
        parts.append(
            f"freed AS (UPDATE {tables[Slot]} SET status = %s, claimed_at = NULL"
            " WHERE id = %s AND status = %s)"
        )
        params[-4:-4] = [Slot.Status.FREE, participant.slot_id, Slot.Status.CLAIMED]
        progress += ", slot_id = NULL, flags = %s::jsonb, screened_at = %s, excluded = %s"
        params += [json.dumps(participant.flags), participant.screened_at, participant.excluded]
        participant.slot = None
    params.append(participant.pk)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH "
            + ", ".join(parts)
            + f" UPDATE {tables[Participant]} SET {progress} WHERE id = %s",
            params,
        )
    participant.last_seen_at = now


def _after_blocks_pending(participant: Participant) -> bool:
    done = set(participant.completed_blocks or [])
    return any(b.key not in done for b in study_material(participant.study).after_blocks)


def _mark_finished(participant: Participant, now: datetime) -> None:
    participant.status = Participant.Status.COMPLETED
    participant.completed_at = now


def _complete(participant: Participant, now: datetime) -> None:
    """Mark the (locked) participant finished and its slot used up; the caller saves."""
    _mark_finished(participant, now)
    Slot.objects.filter(pk=participant.slot_id).update(status=Slot.Status.COMPLETED)


@transaction.atomic
def record_block_answers(
    *,
    participant: Participant,
    block_key: str,
    raw_answers: Mapping[str, str | Sequence[str]],
) -> RecordOutcome:
    """Store one questionnaire block's answers with the participant's progress, exactly once.

    ``raw_answers`` maps question keys to the submitted string (a list of strings for
    multiple choice). Returns "duplicate" when the block was already submitted and "stale"
    when it is not the participant's current page; raises AnswersInvalid (nothing stored)
    when an answer does not fit its question.
    """
    participant = _lock(participant)
    if block_key in (participant.completed_blocks or []):
        return RecordOutcome("duplicate", participant)
    step, block = selectors.participant_page(participant)
    if step != "block" or block is None or block.key != block_key:
        # A later block cannot be answered before the earlier pages.
        return RecordOutcome("stale", participant)
    questions = selectors.block_questions(block, study=participant.study)
    parsed = parse_block_answers(questions, raw_answers)
    if not parsed.ok:
        raise AnswersInvalid(parsed.errors)
    by_key = {q.key: q for q in questions}
    BlockAnswer.objects.bulk_create(
        [
            BlockAnswer(
                participant=participant,
                question=by_key[key],
                value_number=answer.number,
                value_text=answer.text,
                value_choices=list(answer.choices),
            )
            for key, answer in parsed.values.items()
        ]
    )
    participant.completed_blocks = [*(participant.completed_blocks or []), block.key]
    fields = ["completed_blocks", "last_seen_at"]
    if (
        block.placement == QuestionnaireBlock.Placement.AFTER
        and participant.position > selectors.item_count(participant)
        and not _after_blocks_pending(participant)
    ):
        _complete(participant, timezone.now())
        fields += ["status", "completed_at"]
    participant.save(update_fields=fields)
    return RecordOutcome("stored", participant)


def release_expired_slots(*, now: datetime | None = None) -> int:
    """Periodic sweep over every study people may still be taking (the join path also
    sweeps, lazily); a closed study's time limit still holds for those in progress."""
    running = Study.objects.filter(
        status__in=(Study.Status.LIVE, Study.Status.PAUSED, Study.Status.CLOSED)
    )
    return sum(expire_overdue_participants(study=study, now=now) for study in running)


@transaction.atomic
def exclude_participant(
    *, participant: Participant, reason: str, actor=None, replace: bool = False
) -> Participant:
    """Record a researcher's decision to exclude a participant from the data, beside their
    status (a completed participant stays completed), with an audit row and the reason.

    ``replace``: also add a replacement slot in the participant's cell (``add_replacement_slot``)
    so the study still reaches its target; an exclusion already decided adds none.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("give a reason for the exclusion")
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    if participant.exclusion_decision == Participant.Exclusion.EXCLUDED:
        return participant
    replacement = add_replacement_slot(participant=participant) if replace else None
    return _record_decision(
        participant,
        Participant.Exclusion.EXCLUDED,
        reason=reason,
        actor=actor,
        replacement_slot=replacement.index if replacement else None,
    )


def _record_decision(
    participant: Participant, decision: str, *, reason: str, actor, **detail
) -> Participant:
    """Store a researcher's exclusion decision on a locked participant, with its audit row."""
    from studies.services import record_audit  # studies.services imports this module

    previous = participant.exclusion_decision or "undecided"
    participant.exclusion_decision = decision
    participant.excluded = decision == Participant.Exclusion.EXCLUDED
    participant.exclusion_reason = reason
    participant.exclusion_decided_at = timezone.now()
    participant.save(
        update_fields=[
            "exclusion_decision",
            "excluded",
            "exclusion_reason",
            "exclusion_decided_at",
            "last_seen_at",
        ]
    )
    record_audit(
        study=participant.study,
        action=f"participant_{decision}",
        actor=actor,
        participant=participant.pseudonym,
        status=participant.status,
        old=previous,
        reason=reason,
        flags=[f.get("rule") for f in participant.flags or []],
        **detail,
    )
    return participant


def _free_slot(participant: Participant) -> None:
    """Give a leaving participant's slot back, finished or not, so the target is still met."""
    if participant.slot_id is not None:
        Slot.objects.filter(
            pk=participant.slot_id, status__in=(Slot.Status.CLAIMED, Slot.Status.COMPLETED)
        ).update(status=Slot.Status.FREE, claimed_at=None)
    participant.slot = None


def _delete_answers(participant: Participant) -> dict[str, int]:
    """Delete everything the participant answered; the participant row stays as a stub."""
    ratings = Rating.objects.filter(participant=participant).delete()[0]
    block_answers = BlockAnswer.objects.filter(participant=participant).delete()[0]
    trials = Trial.objects.filter(participant=participant).delete()[0]
    participant.completed_blocks = []
    return {"ratings": ratings, "block_answers": block_answers, "trials": trials}


def _withdraw(
    participant: Participant, *, delete_answers: bool, by: str, actor=None
) -> Participant:
    """Withdraw a participant whose row the caller has locked, with an audit row."""
    from studies.services import record_audit  # studies.services imports this module

    already = participant.status == Participant.Status.WITHDRAWN
    previous = participant.status
    deleted = _delete_answers(participant) if delete_answers else None
    if already and not (deleted and any(deleted.values())):
        return participant
    if not already:
        _free_slot(participant)
        participant.status = Participant.Status.WITHDRAWN
        participant.withdrawn_at = timezone.now()
    participant.save()
    record_audit(
        study=participant.study,
        action="participant_withdrawn",
        actor=actor,
        participant=participant.pseudonym,
        by=by,
        old=previous,
        answers_deleted=bool(delete_answers),
        **(deleted or {}),
    )
    return participant


@transaction.atomic
def withdraw_participant(*, participant: Participant, delete_answers: bool) -> Participant:
    """The participant leaves the study of their own accord: their slot goes back to the free
    ones, their answers stay out of analysis and exports (counted_participants) and, when they
    ask, are deleted (ratings, trials, block answers); the row stays as a withdrawn stub.

    Only someone still taking part may withdraw here (anyone else is past the study's pages);
    a repeated request changes nothing, except that it may still delete the answers.
    """
    participant = (
        Participant.objects.select_for_update(of=("self",))
        .select_related("study")
        .get(pk=participant.pk)
    )
    if participant.status not in (Participant.Status.ACTIVE, Participant.Status.WITHDRAWN):
        return participant
    return _withdraw(participant, delete_answers=delete_answers, by="participant")


class ParticipantNotFound(ValueError):
    """No participant of the study has the recruitment id given."""


@transaction.atomic
def delete_participant_data(*, study: Study, recruitment_id: str, actor=None) -> Participant:
    """A researcher deletes, on the person's request, the answers of the participant with this
    recruitment id (found by its keyed pseudonym): withdrawn with their answers deleted. The
    audit row names the pseudonym, never the id. Raises ParticipantNotFound (nothing changed)."""
    recruitment_id = (recruitment_id or "").strip()
    found = selectors.participant_by_external_id(study, recruitment_id) if recruitment_id else None
    if found is None:
        raise ParticipantNotFound("no participant of this study has that recruitment id")
    participant = Participant.objects.select_for_update(of=("self",)).get(pk=found.pk)
    participant.study = study
    return _withdraw(participant, delete_answers=True, by="researcher", actor=actor)


def recruitment_ids_due(study: Study, now: datetime) -> bool:
    """Whether the study's raw recruitment ids are past their retention (days after closing)."""
    if study.closed_at is None:
        return False
    return study.closed_at + timedelta(days=study.retention_days) <= now


@transaction.atomic
def erase_expired_recruitment_ids(*, now: datetime | None = None) -> int:
    """Erase the raw recruitment ids of every study closed ``retention_days`` ago or longer;
    one audit row per study with ids erased. Returns how many ids were erased."""
    from studies.services import record_audit  # studies.services imports this module

    now = now or timezone.now()
    erased = 0
    for study in Study.objects.filter(closed_at__isnull=False, closed_at__lte=now):
        if not recruitment_ids_due(study, now):
            continue
        count = (
            Participant.objects.filter(study=study)
            .exclude(recruitment_id_encrypted="")
            .update(recruitment_id_encrypted="", recruitment_id_erased_at=now)
        )
        if count:
            record_audit(
                study=study,
                action="recruitment_ids_erased",
                ids=count,
                retention_days=study.retention_days,
                closed_at=study.closed_at.isoformat(),
            )
        erased += count
    return erased


@dataclass(frozen=True)
class RotationCounts:
    rotated: int  # re-encrypted with the first key now
    current: int  # already readable by the first key: left as they were
    unreadable: int  # no configured key reads them: left as they were, to be looked into


def rotate_recruitment_ids(*, batch_size: int = 500) -> RotationCounts:
    """Re-encrypt every stored recruitment id with the first key of RECRUITMENT_ID_KEYS, in
    batches of ``batch_size`` rows (each its own transaction). Idempotent: ids the first key
    already reads are left alone, so a second run rotates nothing.

    A row is written only if it still holds the token that was read, so an id erased (or a
    participant deleted) meanwhile is never brought back.
    """
    if not recruitment_ids.recruitment_keys_configured():
        raise recruitment_ids.RecruitmentKeyError(
            "no recruitment id key is configured (RECRUITMENT_ID_KEYS)"
        )
    rotated = current = unreadable = 0
    last_pk = 0
    table = Participant._meta.db_table
    while True:
        rows = list(
            Participant.objects.filter(pk__gt=last_pk)
            .exclude(recruitment_id_encrypted="")
            .order_by("pk")
            .values_list("pk", "recruitment_id_encrypted")[:batch_size]
        )
        if not rows:
            break
        last_pk = rows[-1][0]
        changes = []
        for pk, token in rows:
            if recruitment_ids.encrypted_with_first_key(token):
                current += 1
                continue
            try:
                changes.append((pk, token, recruitment_ids.rotated(token)))
            except recruitment_ids.RecruitmentKeyError:
                unreadable += 1
        if not changes:
            continue
        values = ", ".join(["(%s, %s, %s)"] * len(changes))
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS p SET recruitment_id_encrypted = c.new"
                f" FROM (VALUES {values}) AS c(id, old, new)"
                " WHERE p.id = c.id AND p.recruitment_id_encrypted = c.old",
                [value for change in changes for value in change],
            )
            rotated += cursor.rowcount
    return RotationCounts(rotated=rotated, current=current, unreadable=unreadable)


def slot_count(study: Study) -> int:
    return Slot.objects.filter(study=study).count()


@transaction.atomic
def end_pilot_flags(*, study: Study) -> int:
    """After a full launch a freed pilot slot goes to an ordinary participant; who *was* a
    pilot participant stays recorded on Participant.is_pilot."""
    return Slot.objects.filter(study=study, is_pilot=True).update(is_pilot=False)


@transaction.atomic
def delete_study_records(*, study: Study) -> int:
    """Delete everything participants left in a study; returns how many participants there were.

    Ratings, answers and trials protect the queries and questions they point at, so they must
    go before the study itself can.
    """
    participants = Participant.objects.filter(study=study).count()
    Rating.objects.filter(participant__study=study).delete()
    BlockAnswer.objects.filter(participant__study=study).delete()
    Trial.objects.filter(participant__study=study).delete()
    Participant.objects.filter(study=study).delete()
    Slot.objects.filter(study=study).delete()
    return participants


# --- Quality screening and exclusion decisions (rules: studies.datasets.quality) -------------

# Participants the rules look at: those who reached an end with answers to judge.
SCREENED_STATUSES = (Participant.Status.COMPLETED, Participant.Status.SCREENED_OUT)
# A sweep screens at most this many participants of one study, so one sweep stays short.
SCREEN_BATCH = 2000


def _effective_exclusion(participant: Participant) -> bool:
    """Excluded when the flags say so, unless a researcher decided (their decision wins)."""
    if participant.exclusion_decision == Participant.Exclusion.EXCLUDED:
        return True
    if participant.exclusion_decision == Participant.Exclusion.KEPT:
        return False
    return bool(participant.flags)


@dataclass(frozen=True)
class ScreeningOutcome:
    screened: int
    flagged: int
    excluded: int  # effective exclusions among the screened, decisions included


@transaction.atomic
def screen_participants(
    *,
    study: Study,
    participants: Sequence[Participant] | None = None,
    actor=None,
    now: datetime | None = None,
) -> ScreeningOutcome:
    """Apply the study's quality rules to finished participants and store flags, screened_at
    and the effective ``excluded``.

    ``participants`` None: every completed or screened-out participant of the study (what
    "Run quality checks" does; the speeders' median is today's). A researcher's decision
    is kept: it wins over the flags. One audit row per run that screened anyone.
    """
    from studies.datasets import quality
    from studies.services import record_audit  # studies.services imports this module
    from studies.spec.model import QualitySpec

    now = now or timezone.now()
    rules = QualitySpec.from_dict(study.quality)
    rows = Participant.objects.filter(study=study, status__in=SCREENED_STATUSES)
    if participants is not None:
        rows = rows.filter(pk__in=[p.pk for p in participants])
    locked = list(rows.select_for_update().order_by("pk"))
    if not locked:
        return ScreeningOutcome(0, 0, 0)
    records, population = selectors.quality_records(study, [p.pk for p in locked])
    flags = quality.screen(records, rules, population=population)
    for participant in locked:
        participant.flags = flags.get(participant.pk, [])
        participant.screened_at = now
        participant.excluded = _effective_exclusion(participant)
    Participant.objects.bulk_update(locked, ["flags", "screened_at", "excluded"], batch_size=500)
    outcome = ScreeningOutcome(
        screened=len(locked),
        flagged=sum(1 for p in locked if p.flags),
        excluded=sum(1 for p in locked if p.excluded),
    )
    record_audit(
        study=study,
        action="quality_screened",
        actor=actor,
        screened=outcome.screened,
        flagged=outcome.flagged,
        excluded=outcome.excluded,
        rules=quality.rule_counts(p.flags for p in locked),
        scope="all finished" if participants is None else "selected",
    )
    return outcome


def screen_finished_participants(*, now: datetime | None = None) -> int:
    """The beat sweep: screen the participants who completed since the last sweep (never
    screened), in every running study with a rule on; returns how many were screened.

    Each participant is screened once, against the speeders' median of that moment;
    "Run quality checks" (screen_participants without ``participants``) re-screens them all.
    """
    from studies.spec.model import QualitySpec

    screened = 0
    running = Study.objects.filter(
        status__in=(Study.Status.LIVE, Study.Status.PAUSED, Study.Status.CLOSED)
    ).exclude(quality={})
    for study in running:
        if not QualitySpec.from_dict(study.quality).any_enabled:
            continue
        pending = list(
            Participant.objects.filter(
                study=study, status=Participant.Status.COMPLETED, screened_at__isnull=True
            )
            .order_by("pk")
            .only("pk")[:SCREEN_BATCH]
        )
        if pending:
            screened += screen_participants(study=study, participants=pending, now=now).screened
    return screened


@transaction.atomic
def keep_participant(*, participant: Participant, reason: str, actor=None) -> Participant:
    """A researcher's decision to keep a (flagged) participant in the data: ``excluded`` is
    False whatever the flags say, with the reason and an audit row."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("give a reason for keeping this participant")
    participant = Participant.objects.select_for_update().get(pk=participant.pk)
    if participant.exclusion_decision == Participant.Exclusion.KEPT:
        return participant
    return _record_decision(participant, Participant.Exclusion.KEPT, reason=reason, actor=actor)


@transaction.atomic
def add_replacement_slot(*, participant: Participant) -> Slot:
    """A new free slot at the end of the study's slots, in the participant's cell, with a copy
    of their slot's items, so an excluded participant's place is taken again.

    Only for a running study and a participant who holds a used slot (a screened-out or
    timed-out participant's slot went back already). The study row is locked, so adding
    slots (lifecycle.add_slots) waits rather than taking the same index.
    """
    study = Study.objects.select_for_update().get(pk=participant.study_id)
    if study.status not in (Study.Status.LIVE, Study.Status.PAUSED):
        raise ValueError(
            f"the study is {study.status}: a replacement slot is only added while it runs "
            "(live or paused)"
        )
    if participant.slot_id is None:
        raise ValueError(
            "this participant holds no slot (it was given back when they left): no replacement "
            "is needed"
        )
    if study.pilot_slots > 0 and slot_count(study) < study.target_participants:
        # The full launch creates the slots up to the target: a replacement made now would
        # only take one of them.
        raise ValueError(
            "the study is running its pilot: do the full launch first, then add the replacement"
        )
    original = Slot.objects.get(pk=participant.slot_id)
    last = Slot.objects.filter(study=study).order_by("-index").values_list("index", flat=True)
    slot = Slot.objects.create(
        study=study,
        index=(last.first() or 0) + 1,
        cell=original.cell,
        is_pilot=original.is_pilot,
    )
    SlotItem.objects.bulk_create(
        [
            SlotItem(
                slot=slot,
                position=item.position,
                kind=item.kind,
                levels=item.levels,
                response_type=item.response_type,
                motivation=item.motivation,
                query_id=item.query_id,
                category=item.category,
                attention_check_id=item.attention_check_id,
            )
            for item in SlotItem.objects.filter(slot=original).order_by("position")
        ]
    )
    return slot


def confirm_flagged(*, study: Study, reason: str, actor=None, replace: bool = False) -> int:
    """Confirm the exclusion of every flagged participant without a decision; returns how many.

    With ``replace`` each one holding a used slot gets a replacement slot.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValueError("give a reason for the exclusions")
    undecided = (
        Participant.objects.filter(study=study, exclusion_decision=Participant.Exclusion.UNDECIDED)
        .exclude(flags=[])
        .exclude(status=Participant.Status.WITHDRAWN)
        .order_by("pk")
    )
    confirmed = 0
    with transaction.atomic():
        for participant in undecided:
            exclude_participant(
                participant=participant,
                reason=reason,
                actor=actor,
                replace=replace and participant.status == Participant.Status.COMPLETED,
            )
            confirmed += 1
    return confirmed
