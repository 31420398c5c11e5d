"""Writes of the researcher side: importing specs and stimuli, launching studies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction

from studies import access
from studies.domain import STUDY_EDITABLE_STATUSES
from studies.errors import StudyStateError
from studies.models import (
    AuditEvent,
    Query,
    Question,
    QuestionnaireBlock,
    ResponseVariant,
    Scenario,
    Study,
    StudyMembership,
)
from studies.spec import BlockQuestionSpec, ScaleSpec, StudySpec, load_spec_data
from studies.stimuli_file import StimuliFileError, StimulusRow, row_text_problems
from studies.text_checks import unstorable_character

# The statuses whose design and stimuli may change (the one definition is in studies.domain).
EDITABLE_STATUSES = STUDY_EDITABLE_STATUSES


def record_audit(
    *, study: Study, action: str, actor: AbstractBaseUser | None = None, **detail: object
) -> AuditEvent:
    return AuditEvent.objects.create(study=study, actor=actor, action=action, detail=detail)


def _design_json(spec: StudySpec) -> dict:
    return {
        "factors": [f.to_dict() for f in spec.factors],
        "response_rule": [r.to_dict() for r in spec.response_rule],
        "analysis": spec.analysis.to_dict(),
    }


def _anchors_json(scale: ScaleSpec) -> dict[str, str]:
    return {str(point): label for point, label in scale.anchors}


def _block_question(
    study: Study, block: QuestionnaireBlock, q: BlockQuestionSpec, order: int
) -> Question:
    """A block question's row: only the fields of its type are set."""
    return Question(
        study=study,
        block=block,
        key=q.key,
        kind=q.type,
        text=q.text,
        required=q.required,
        order=order,
        points=q.scale.points if q.scale else None,
        anchors=_anchors_json(q.scale) if q.scale else {},
        options=list(q.options),
        max_length=q.max_length,
        min_value=q.min,
        max_value=q.max,
    )


@transaction.atomic
def import_study(
    *,
    spec: StudySpec,
    stimuli: list[StimulusRow] | None = None,
    actor: AbstractBaseUser | None = None,
) -> Study:
    """Create or update a draft study from a validated spec (see studies.spec.load_spec)."""
    if not isinstance(spec, StudySpec):
        # A dict has not been through validation: load_spec_data(d) makes it a StudySpec.
        raise TypeError(f"import_study needs a StudySpec, got {type(spec).__name__}")
    # A StudySpec changed with dataclasses.replace skipped the validator: check it again
    # (SpecError), so no entry point can store a design the spec format would refuse.
    load_spec_data(spec.to_dict(), source=spec.slug)
    study = Study.objects.select_for_update().filter(slug=spec.slug).first()
    if study is not None and study.status not in EDITABLE_STATUSES:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; its design can no longer be changed"
        )
    created = study is None
    study = study or Study(slug=spec.slug)
    study.title = spec.title
    study.description = spec.description
    study.consent_md = spec.consent
    study.instructions_md = spec.instructions
    study.target_participants = spec.target_participants
    study.items_per_participant = spec.items_per_participant
    study.time_limit_minutes = spec.time_limit_minutes
    study.completion_code = spec.completion.code
    study.completion_url = spec.completion.url
    study.recruitment_params = spec.recruitment_params.to_dict()
    study.anonymous_links = spec.anonymous_links
    study.retention_days = spec.retention_days
    study.topic_choice = spec.topic_choice
    study.seed = spec.seed
    study.design = _design_json(spec)
    study.quality = spec.quality.to_dict()
    study.save()
    if created and actor is not None:
        # Whoever creates a study owns it, whatever the entry point.
        StudyMembership.objects.create(study=study, user=actor, role=StudyMembership.Role.OWNER)

    study.questions.all().delete()
    study.blocks.all().delete()
    questions = [
        Question(
            study=study,
            key=q.key,
            construct=q.construct,
            text=q.text,
            points=q.scale.points,
            anchors=_anchors_json(q.scale),
            reverse_coded=q.reverse_coded,
            required=q.required,
            order=order,
        )
        for order, q in enumerate(spec.questions)
    ]
    questions += [
        Question(
            study=study,
            key=c.key,
            text=c.text,
            points=c.scale.points,
            anchors=_anchors_json(c.scale),
            required=True,
            order=len(spec.questions) + order,
            is_attention_check=True,
            correct_value=c.correct,
            after_item=c.after_item,
        )
        for order, c in enumerate(spec.attention_checks)
    ]
    for block_order, b in enumerate(spec.blocks):
        block = QuestionnaireBlock.objects.create(
            study=study,
            key=b.key,
            title=b.title,
            intro_md=b.intro,
            placement=b.placement,
            order=block_order,
        )
        questions += [
            _block_question(study, block, q, order) for order, q in enumerate(b.questions)
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


# Rows written per round of INSERT statements (queries, then their scenarios, then their
# texts): enough that a large file costs a few statements per batch rather than per row, few
# enough that one batch's statement stays well under PostgreSQL's parameter limit.
IMPORT_BATCH_ROWS = 500


@transaction.atomic
def import_stimuli(
    *,
    study: Study,
    rows: Iterable[StimulusRow],
    replace: bool = False,
    actor: AbstractBaseUser | None = None,
) -> StimuliImportSummary:
    """Upsert queries, scenarios and written responses; ``replace`` drops queries not in rows.

    ``rows`` may be a reader that yields rows while it reads a file and raises
    StimuliFileError at its end (studies.stimuli_file.iter_stimuli): rows are written in
    batches as they come, and any error rolls the whole import back.
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status not in EDITABLE_STATUSES:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; its stimuli can no longer be changed"
        )
    existing = set(study.queries.values_list("query_id", flat=True))
    if replace:
        # Replacing means the file is the whole truth: its queries, scenarios and responses only.
        study.queries.all().delete()
    in_file: dict[str, int] = {}
    problems: list[str] = []
    batch: list[StimulusRow] = []
    for row in rows:
        problems += row_text_problems(row)
        if row.query_id in in_file:
            problems.append(
                f"line {row.line}: duplicate query_id '{row.query_id}' "
                f"(first on line {in_file[row.query_id]})"
            )
        in_file.setdefault(row.query_id, row.line)
        if problems:
            continue  # nothing more is written; the rows are still checked
        batch.append(row)
        if len(batch) == IMPORT_BATCH_ROWS:
            _write_stimuli_batch(study, batch)
            batch = []
    if problems:
        raise StimuliFileError(problems)
    if batch:
        _write_stimuli_batch(study, batch)
    if replace:
        created, updated, removed = len(in_file), 0, len(existing - in_file.keys())
    else:
        updated = len(existing & in_file.keys())
        created, removed = len(in_file) - updated, 0
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


def _write_stimuli_batch(study: Study, rows: list[StimulusRow]) -> None:
    """Upsert one batch of rows: three INSERT ... ON CONFLICT statements, whatever its size.

    Each statement updates on its model's natural key, as update_or_create did row by row:
    a query's fields, a scenario's text, an imported text (with its source and review status;
    provenance and texts of other models are left alone).
    """
    queries = Query.objects.bulk_create(
        [
            Query(
                study=study,
                query_id=row.query_id,
                text=row.query,
                category=row.category,
                topic=row.topic,
                source=row.metadata.get("source", ""),
                metadata={k: v for k, v in row.metadata.items() if k != "source"},
            )
            for row in rows
        ],
        update_conflicts=True,
        unique_fields=["study", "query_id"],
        update_fields=["text", "category", "topic", "source", "metadata"],
    )
    Scenario.objects.bulk_create(
        [
            Scenario(query=query, motivation=motivation, text=text)
            for query, row in zip(queries, rows, strict=True)
            for motivation, text in row.scenarios.items()
        ],
        update_conflicts=True,
        unique_fields=["query", "motivation"],
        update_fields=["text"],
    )
    ResponseVariant.objects.bulk_create(
        [
            ResponseVariant(
                query=query,
                response_type=response_type,
                model_name="",
                sample=0,
                text=text,
                source=ResponseVariant.Source.IMPORTED,
                review_status=ResponseVariant.ReviewStatus.APPROVED,
            )
            for query, row in zip(queries, rows, strict=True)
            for response_type, text in row.responses.items()
        ],
        update_conflicts=True,
        unique_fields=["query", "response_type", "model_name", "sample"],
        update_fields=["text", "source", "review_status", "updated_at"],
    )


def launch_study(
    *, study: Study, actor: AbstractBaseUser | None = None, pilot_slots: int | None = None
) -> int:
    """Check the study can run, build its plan and open it; returns the number of slots.

    Kept for commands and older callers: studies.lifecycle holds the lifecycle now.
    """
    from studies import lifecycle

    return lifecycle.launch_study(study=study, actor=actor, pilot_slots=pilot_slots)


def set_study_status(
    *, study: Study, status: Study.Status, actor: AbstractBaseUser | None = None
) -> Study:
    """Pause, resume or close a launched study (see studies.lifecycle)."""
    from studies import lifecycle

    change = {
        Study.Status.PAUSED: lifecycle.pause_study,
        Study.Status.LIVE: lifecycle.resume_study,
        Study.Status.CLOSED: lifecycle.close_study,
        Study.Status.ARCHIVED: lifecycle.archive_study,
    }.get(status)
    if change is None:
        raise StudyStateError(f"study '{study.slug}' cannot be set to {status} directly")
    return change(study=study, actor=actor)


# Queries-only import: material from elsewhere (a pseudo-harmful prompt set, a list) becomes a
# draft study's queries with no scenarios or responses yet; those are written next (scenarios
# by a query–scenario job, responses by generation), and launch refuses until they exist.

DRAFT_QUERY_LIMITS: dict[str, int] = {"query_id": 64, "category": 64, "topic": 200, "source": 200}


@dataclass(frozen=True)
class DraftQuery:
    """One query to add to a draft study, without scenarios or responses."""

    query_id: str
    text: str
    category: str
    topic: str = ""
    source: str = ""
    metadata: dict = field(default_factory=dict)


class DraftQueryError(ValueError):
    """Rows that cannot become queries; ``problems`` names each one's row (from 1) and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _draft_query_problems(rows: list[DraftQuery], existing: set[str]) -> list[str]:
    problems: list[str] = []
    first: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        at = f"row {number}"
        if not isinstance(row, DraftQuery):
            problems.append(f"{at}: must be a DraftQuery")
            continue
        cells = {
            "query_id": row.query_id,
            "text": row.text,
            "category": row.category,
            "topic": row.topic,
            "source": row.source,
        }
        for name, value in cells.items():
            if not isinstance(value, str):
                problems.append(f"{at}: {name} must be text")
            elif reason := unstorable_character(value):
                problems.append(f"{at}, {name}: {reason}")
            elif len(value.strip()) > DRAFT_QUERY_LIMITS.get(name, len(value) + 1):
                problems.append(
                    f"{at}: {name} is longer than {DRAFT_QUERY_LIMITS[name]} characters"
                )
        for name in ("query_id", "text", "category"):
            if isinstance(cells[name], str) and not cells[name].strip():
                problems.append(f"{at}: {name} is empty")
        if not isinstance(row.metadata, dict):
            problems.append(f"{at}: metadata must be an object")
        query_id = row.query_id.strip() if isinstance(row.query_id, str) else ""
        if query_id in existing:
            problems.append(f"{at}: the study already has a query with id {query_id!r}")
        elif query_id and query_id in first:
            problems.append(
                f"{at}: duplicate query id {query_id!r} (first in row {first[query_id]})"
            )
        elif query_id:
            first[query_id] = number
    return problems


@transaction.atomic
def import_draft_queries(
    *, study: Study, rows: Sequence[DraftQuery], actor: AbstractBaseUser
) -> list[Query]:
    """Add queries without scenarios or responses to a draft study the actor may edit.

    PermissionDenied when the actor may not edit the study, StudyStateError when it is not a
    draft, DraftQueryError listing every bad row (empty or too long fields, an id used twice
    or already in the study); nothing is written then. The new queries still need scenarios
    (for a design with a motivation factor) and responses: launch refuses and names them.
    """
    if not access.can(actor, access.Action.EDIT, study):
        raise PermissionDenied("you may not edit this study's queries")
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status != Study.Status.DRAFT:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; queries can be imported into a draft only"
        )
    rows = list(rows)
    if not rows:
        raise DraftQueryError(["give at least one query"])
    existing = set(study.queries.values_list("query_id", flat=True))
    problems = _draft_query_problems(rows, existing)
    if problems:
        raise DraftQueryError(problems)
    queries = Query.objects.bulk_create(
        [
            Query(
                study=study,
                query_id=row.query_id.strip(),
                text=row.text.strip(),
                category=row.category.strip(),
                topic=row.topic.strip(),
                source=row.source.strip(),
                metadata=dict(row.metadata),
            )
            for row in rows
        ]
    )
    record_audit(
        study=study,
        action="draft_queries_imported",
        actor=actor,
        created=len(queries),
        sources=sorted({row.source.strip() for row in rows if row.source.strip()}),
    )
    return queries


# Scenarios for a draft study's queries that have none (written by a query–scenario job, or
# by hand): both motivation levels at once per query, never over scenarios it has.


class ScenarioInputError(ValueError):
    """Scenarios that cannot be added; ``problems`` names each query and what is wrong."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@transaction.atomic
def add_scenarios(
    *,
    study: Study,
    scenarios: dict[str, dict[str, str]],
    actor: AbstractBaseUser,
    source: str = "",
) -> int:
    """Write the scenario of every motivation level for each query (query id → {motivation:
    text}) of a draft study the actor may edit; returns how many queries got scenarios.

    PermissionDenied when the actor may not edit it, StudyStateError when it is not a draft,
    ScenarioInputError listing every unknown query, query with scenarios already, missing or
    unstorable text; nothing is written then. ``source`` goes into each query's metadata
    (``scenario_source``) and the audit row.
    """
    from django.core.exceptions import PermissionDenied

    from studies import access
    from studies.domain import MOTIVATION_LEVELS
    from studies.text_checks import unstorable_character

    if not access.can(actor, access.Action.EDIT, study):
        raise PermissionDenied("you may not edit this study's stimuli")
    study = Study.objects.select_for_update().get(pk=study.pk)
    if study.status != Study.Status.DRAFT:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; scenarios can be added to a draft only"
        )
    if not scenarios:
        raise ScenarioInputError(["give the scenarios of at least one query"])
    queries = {q.query_id: q for q in study.queries.filter(query_id__in=list(scenarios))}
    having = set(
        Scenario.objects.filter(query__in=queries.values()).values_list(
            "query__query_id", flat=True
        )
    )
    problems = []
    for query_id, texts in scenarios.items():
        if query_id not in queries:
            problems.append(f"query {query_id}: the study has no such query")
            continue
        if query_id in having:
            problems.append(f"query {query_id}: has scenarios already; they are not replaced")
        for motivation in MOTIVATION_LEVELS:
            text = (texts or {}).get(motivation)
            if not isinstance(text, str) or not text.strip():
                problems.append(f"query {query_id}: the {motivation} scenario is empty")
            elif reason := unstorable_character(text):
                problems.append(f"query {query_id}, {motivation} scenario: {reason}")
    if problems:
        raise ScenarioInputError(problems)
    Scenario.objects.bulk_create(
        [
            Scenario(query=queries[query_id], motivation=m, text=texts[m].strip())
            for query_id, texts in scenarios.items()
            for m in MOTIVATION_LEVELS
        ]
    )
    if source:
        for query_id in scenarios:
            query = queries[query_id]
            query.metadata = {**(query.metadata or {}), "scenario_source": source}
        Query.objects.bulk_update([queries[q] for q in scenarios], ["metadata"])
    record_audit(
        study=study, action="scenarios_added", actor=actor, queries=len(scenarios), source=source
    )
    return len(scenarios)
