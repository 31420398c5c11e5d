"""A study's life after its design: launch (pilot, full), pause, resume, close, more slots,
archive and delete — each a transaction that writes an audit row.

Slots always come from one plan built with the study's seed: the plan for N slots is a
prefix of the plan for more (studies.design.build_plan), so a pilot, the full launch and
every later "add slots" take the next slots of that same plan and the between-participants
cells stay balanced to within one slot overall.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation import services as annotation_services
from studies import selectors
from studies.design import PlannedSlot, QueryRef, build_plan
from studies.errors import LaunchRefused, StudyStateError
from studies.models import Study
from studies.services import record_audit
from studies.spec import design_from_spec

logger = logging.getLogger(__name__)

Status = Study.Status

# Far beyond any perception study; stops a typo (10000 for 100) from building a huge plan.
MAX_SLOTS = 20_000
# Where each change may start from.
PAUSABLE = (Status.LIVE,)
RESUMABLE = (Status.PAUSED,)
CLOSABLE = (Status.LIVE, Status.PAUSED)
RUNNING = (Status.LIVE, Status.PAUSED)
ARCHIVABLE = (Status.CLOSED,)
# A study people may be taking right now is closed first, so nobody loses a session mid-way.
DELETABLE = (Status.DRAFT, Status.GENERATING, Status.REVIEW, Status.CLOSED, Status.ARCHIVED)


def study_plan(study: Study, n_slots: int) -> tuple[list[PlannedSlot], dict[str, int]]:
    """The study's plan for ``n_slots`` slots and its query ids → primary keys.

    Raises ValueError, in words a researcher can act on, when the study cannot be planned.
    """
    spec = selectors.study_spec(study)
    queries = list(study.queries.order_by("query_id"))
    plan = build_plan(
        design_from_spec(spec),
        [QueryRef(query_id=q.query_id, category=q.category) for q in queries],
        n_slots=n_slots,
        seed=study.seed,
        topic_choice=study.topic_choice,
    )
    return plan, {q.query_id: q.pk for q in queries}


def slot_count(study: Study) -> int:
    return annotation_services.slot_count(study)


def awaiting_full_launch(study: Study) -> bool:
    """True while a pilot runs: fewer slots exist than the target."""
    return (
        study.status in RUNNING
        and study.pilot_slots > 0
        and slot_count(study) < study.target_participants
    )


def _locked(study: Study) -> Study:
    return Study.objects.select_for_update().get(pk=study.pk)


def _extend_plan(study: Study, count: int, *, is_pilot: bool = False) -> int:
    """Create the next ``count`` slots of the study's plan; returns how many were created."""
    existing = slot_count(study)
    try:
        plan, query_pks = study_plan(study, existing + count)
    except ValueError as exc:
        raise LaunchRefused([str(exc)]) from exc
    return annotation_services.create_slots(
        study=study, plan=plan[existing:], query_pks=query_pks, is_pilot=is_pilot
    )


@transaction.atomic
def launch_study(
    *, study: Study, actor: AbstractBaseUser | None = None, pilot_slots: int | None = None
) -> int:
    """Check the study can run, create its slots and open it; returns the number of slots.

    With ``pilot_slots`` only that many slots are created and their participants are flagged
    as pilot participants; ``launch_full`` later adds the rest up to the target.
    """
    study = _locked(study)
    reasons = selectors.launch_problems(study)
    if reasons:
        raise LaunchRefused(reasons)
    if pilot_slots is not None:
        if pilot_slots < 1:
            raise LaunchRefused(["a pilot needs at least 1 slot"])
        if pilot_slots >= study.target_participants:
            raise LaunchRefused(
                [
                    f"a pilot of {pilot_slots} slots is not smaller than the target of "
                    f"{study.target_participants} participants; launch in full instead"
                ]
            )
    count = pilot_slots or study.target_participants
    slots = _extend_plan(study, count, is_pilot=pilot_slots is not None)
    study.status = Status.LIVE
    study.launched_at = timezone.now()
    study.pilot_slots = pilot_slots or 0
    study.save(update_fields=["status", "launched_at", "pilot_slots", "updated_at"])
    record_audit(
        study=study, action="study_launched", actor=actor, slots=slots, pilot=bool(pilot_slots)
    )
    return slots


@transaction.atomic
def launch_full(*, study: Study, actor: AbstractBaseUser | None = None) -> int:
    """After a pilot: create the remaining slots up to the target and open the study."""
    study = _locked(study)
    if study.status not in RUNNING or study.pilot_slots == 0:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status} and has no pilot running; "
            "a full launch follows a pilot launch"
        )
    missing = study.target_participants - slot_count(study)
    if missing <= 0:
        raise StudyStateError(
            f"study '{study.slug}' already has all {study.target_participants} slots; "
            "use “Add slots” to raise the target"
        )
    slots = _extend_plan(study, missing)
    annotation_services.end_pilot_flags(study=study)
    previous = study.status
    study.status = Status.LIVE
    study.save(update_fields=["status", "updated_at"])
    record_audit(study=study, action="study_full_launched", actor=actor, slots=slots, old=previous)
    return slots


def _set_status(
    study: Study, *, to: str, allowed: tuple[str, ...], verb: str, actor, why: str
) -> Study:
    study = _locked(study)
    if study.status not in allowed:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; only a "
            f"{' or '.join(str(s) for s in allowed)} study can be {verb}. {why}".strip()
        )
    previous = study.status
    study.status = to
    study.save(update_fields=["status", "updated_at"])
    record_audit(study=study, action="status_changed", actor=actor, old=previous, new=to)
    return study


@transaction.atomic
def pause_study(*, study: Study, actor: AbstractBaseUser | None = None) -> Study:
    """Stop new arrivals for now; people already taking part may finish."""
    return _set_status(
        study, to=Status.PAUSED, allowed=PAUSABLE, verb="paused", actor=actor, why=""
    )


@transaction.atomic
def resume_study(*, study: Study, actor: AbstractBaseUser | None = None) -> Study:
    """Let new participants join a paused study again."""
    return _set_status(
        study, to=Status.LIVE, allowed=RESUMABLE, verb="resumed", actor=actor, why=""
    )


@transaction.atomic
def close_study(*, study: Study, actor: AbstractBaseUser | None = None) -> Study:
    """No new arrivals ever again; people in progress may finish within their time limit.

    The closing time starts the retention period of raw recruitment ids (Study.retention_days).
    """
    study = _set_status(
        study,
        to=Status.CLOSED,
        allowed=CLOSABLE,
        verb="closed",
        actor=actor,
        why="A closed study cannot be reopened: duplicate it to run it again.",
    )
    study.closed_at = timezone.now()
    study.save(update_fields=["closed_at", "updated_at"])
    return study


@transaction.atomic
def archive_study(*, study: Study, actor: AbstractBaseUser | None = None) -> Study:
    """Put a closed study away: hidden from the default study list, data kept."""
    return _set_status(
        study,
        to=Status.ARCHIVED,
        allowed=ARCHIVABLE,
        verb="archived",
        actor=actor,
        why="Close it first.",
    )


@transaction.atomic
def add_slots(*, study: Study, count: int, actor: AbstractBaseUser | None = None) -> int:
    """Raise a running study's target by ``count``, with the next slots of its plan.

    The plan's between-participants cells rotate in seeded rounds, so the new slots go to
    the cells with fewer slots first and all cells stay within one slot of each other.
    """
    study = _locked(study)
    if study.status not in RUNNING:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; slots can be added to a live or "
            "paused study only (a draft's target is part of its design)"
        )
    if awaiting_full_launch(study):
        raise StudyStateError(
            f"study '{study.slug}' is running its pilot; do the full launch before adding slots"
        )
    if not 1 <= count <= MAX_SLOTS:
        raise StudyStateError(f"the number of slots to add must be between 1 and {MAX_SLOTS}")
    created = _extend_plan(study, count)
    previous = study.target_participants
    study.target_participants = slot_count(study)
    study.save(update_fields=["target_participants", "updated_at"])
    record_audit(
        study=study,
        action="slots_added",
        actor=actor,
        slots=created,
        old_target=previous,
        new_target=study.target_participants,
    )
    return created


@transaction.atomic
def delete_study(*, study: Study, confirm: str, actor: AbstractBaseUser | None = None) -> None:
    """Delete a study and everything recorded in it; ``confirm`` must be its slug.

    Callers check the owner role (studies.access, Action.MANAGE). The audit rows go with the
    study, so the deletion is also written to the application log.
    """
    study = _locked(study)
    if (confirm or "").strip() != study.slug:
        raise StudyStateError(
            f"type the study's name “{study.slug}” exactly to confirm the deletion"
        )
    if study.status not in DELETABLE:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; people may be taking it right now. "
            "Close it first, then delete it."
        )
    participants = annotation_services.delete_study_records(study=study)
    slug, pk = study.slug, study.pk
    study.delete()
    logger.warning(
        "study %s (id %s, %s) deleted by %s with %d participants",
        slug,
        pk,
        study.status,
        getattr(actor, "username", None) or "system",
        participants,
    )
