"""Writes of the researcher side: importing specs and stimuli, launching studies."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation import services as annotation_services
from studies import selectors
from studies.design import QueryRef, build_plan
from studies.errors import LaunchRefused, StudyStateError
from studies.models import (
    AuditEvent,
    Query,
    Question,
    ResponseVariant,
    Scenario,
    Study,
    StudyMembership,
)
from studies.spec import design_from_spec
from studies.stimuli_file import StimulusRow

EDITABLE_STATUSES = (Study.Status.DRAFT, Study.Status.GENERATING, Study.Status.REVIEW)


def record_audit(
    *, study: Study, action: str, actor: AbstractBaseUser | None = None, **detail: object
) -> AuditEvent:
    return AuditEvent.objects.create(study=study, actor=actor, action=action, detail=detail)


def _design_json(spec: dict) -> dict:
    return {
        "factors": spec["factors"],
        "response_rule": spec["response_rule"],
        "analysis": spec["analysis"],
    }


@transaction.atomic
def import_study(
    *,
    spec: dict,
    stimuli: list[StimulusRow] | None = None,
    actor: AbstractBaseUser | None = None,
) -> Study:
    """Create or update a draft study from a validated spec (see studies.spec.load_spec)."""
    study = Study.objects.select_for_update().filter(slug=spec["slug"]).first()
    if study is not None and study.status not in EDITABLE_STATUSES:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; its design can no longer be changed"
        )
    created = study is None
    study = study or Study(slug=spec["slug"])
    study.title = spec["title"]
    study.description = spec["description"]
    study.consent_md = spec["consent"]
    study.instructions_md = spec["instructions"]
    study.target_participants = spec["target_participants"]
    study.items_per_participant = spec["items_per_participant"]
    study.time_limit_minutes = spec["time_limit_minutes"]
    study.completion_code = spec["completion"]["code"]
    study.completion_url = spec["completion"]["url"]
    study.recruitment_params = spec["recruitment_params"]
    study.topic_choice = spec["topic_choice"]
    study.seed = spec["seed"]
    study.design = _design_json(spec)
    study.save()
    if created and actor is not None:
        # Whoever creates a study owns it, whatever the entry point.
        StudyMembership.objects.create(study=study, user=actor, role=StudyMembership.Role.OWNER)

    study.questions.all().delete()
    questions = [
        Question(
            study=study,
            key=q["key"],
            construct=q["construct"],
            text=q["text"],
            points=q["scale"]["points"],
            anchors={str(k): v for k, v in q["scale"]["anchors"].items()},
            reverse_coded=q["reverse_coded"],
            required=q["required"],
            order=order,
        )
        for order, q in enumerate(spec["questions"])
    ]
    questions += [
        Question(
            study=study,
            key=c["key"],
            text=c["text"],
            points=c["scale"]["points"],
            anchors={str(k): v for k, v in c["scale"]["anchors"].items()},
            required=True,
            order=len(spec["questions"]) + order,
            is_attention_check=True,
            correct_value=c["correct"],
            after_item=c["after_item"],
        )
        for order, c in enumerate(spec["attention_checks"])
    ]
    Question.objects.bulk_create(questions)
    record_audit(study=study, action="study_imported" if created else "study_updated", actor=actor)
    if stimuli is not None:
        import_stimuli(study=study, rows=stimuli, replace=True, actor=actor)
    return study


@dataclass(frozen=True)
class StimuliImportSummary:
    created: int
    updated: int
    removed: int


@transaction.atomic
def import_stimuli(
    *,
    study: Study,
    rows: list[StimulusRow],
    replace: bool = False,
    actor: AbstractBaseUser | None = None,
) -> StimuliImportSummary:
    """Upsert queries, scenarios and written responses; ``replace`` drops queries not in rows."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status not in EDITABLE_STATUSES:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; its stimuli can no longer be changed"
        )
    existing = {q.query_id: q for q in study.queries.all()}
    removed = 0
    if replace:
        # Replacing means the file is the whole truth: its queries, scenarios and responses only.
        removed = len(existing.keys() - {row.query_id for row in rows})
        study.queries.all().delete()
        existing = {}
    created = updated = 0
    for row in rows:
        query = existing.get(row.query_id)
        fields = {
            "text": row.query,
            "category": row.category,
            "topic": row.topic,
            "source": row.metadata.get("source", ""),
            "metadata": {k: v for k, v in row.metadata.items() if k != "source"},
        }
        if query is None:
            query = Query.objects.create(study=study, query_id=row.query_id, **fields)
            created += 1
        else:
            Query.objects.filter(pk=query.pk).update(**fields)
            updated += 1
        for motivation, text in (
            ("benign", row.benign_scenario),
            ("malicious", row.malicious_scenario),
        ):
            Scenario.objects.update_or_create(
                query=query, motivation=motivation, defaults={"text": text}
            )
        for response_type, text in row.responses.items():
            ResponseVariant.objects.update_or_create(
                query=query,
                response_type=response_type,
                model_name="",
                sample=0,
                defaults={
                    "text": text,
                    "source": ResponseVariant.Source.IMPORTED,
                    "review_status": ResponseVariant.ReviewStatus.APPROVED,
                },
            )
    record_audit(
        study=study,
        action="stimuli_imported",
        actor=actor,
        created=created,
        updated=updated,
        removed=removed,
        replace=replace,
    )
    return StimuliImportSummary(created=created, updated=updated, removed=removed)


@transaction.atomic
def launch_study(*, study: Study, actor: AbstractBaseUser | None = None) -> int:
    """Check the study can run, build its plan and open it; returns the number of slots."""
    study = Study.objects.select_for_update().get(pk=study.pk)
    reasons = selectors.launch_problems(study)
    if reasons:
        raise LaunchRefused(reasons)
    spec = selectors.study_spec(study)
    queries = list(study.queries.order_by("query_id"))
    try:
        plan = build_plan(
            design_from_spec(spec),
            [QueryRef(query_id=q.query_id, category=q.category) for q in queries],
            n_slots=study.target_participants,
            seed=study.seed,
            topic_choice=study.topic_choice,
        )
    except ValueError as exc:
        raise LaunchRefused([str(exc)]) from exc
    slots = annotation_services.create_slots(
        study=study, plan=plan, query_pks={q.query_id: q.pk for q in queries}
    )
    study.status = Study.Status.LIVE
    study.launched_at = timezone.now()
    study.save(update_fields=["status", "launched_at", "updated_at"])
    record_audit(study=study, action="study_launched", actor=actor, slots=slots)
    return slots


@transaction.atomic
def set_study_status(
    *, study: Study, status: Study.Status, actor: AbstractBaseUser | None = None
) -> Study:
    """Pause, resume or close a launched study."""
    allowed = {
        Study.Status.PAUSED: (Study.Status.LIVE,),
        Study.Status.LIVE: (Study.Status.PAUSED,),
        Study.Status.CLOSED: (Study.Status.LIVE, Study.Status.PAUSED),
    }
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status not in allowed.get(status, ()):
        raise StudyStateError(f"study '{study.slug}' is {study.status}; cannot set it to {status}")
    previous = study.status
    study.status = status
    study.save(update_fields=["status", "updated_at"])
    record_audit(study=study, action="status_changed", actor=actor, old=previous, new=status)
    return study
