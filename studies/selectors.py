"""Reads of the researcher side: a study's spec as data, and whether it can be launched."""

from __future__ import annotations

from collections import defaultdict

from studies.design import check_design, required_response_types
from studies.domain import MOTIVATION_FACTOR, RESPONSE_TYPES
from studies.models import Query, Question, ResponseVariant, Scenario, Study
from studies.spec import (
    DEFAULT_RECRUITMENT_PARAMS,
    AnalysisSpec,
    AttentionCheckSpec,
    BlockQuestionSpec,
    BlockSpec,
    CompletionSpec,
    FactorSpec,
    QualitySpec,
    QuestionSpec,
    RecruitmentParams,
    RuleRowSpec,
    ScaleSpec,
    StudySpec,
    design_from_spec,
)
from studies.spec.model import CHOICE_TYPES


def _scale(question: Question) -> ScaleSpec:
    anchors = sorted((int(k), v) for k, v in question.anchors.items())
    return ScaleSpec(points=question.points, anchors=tuple(anchors))


def _block_question(q: Question) -> BlockQuestionSpec:
    """A block question as the spec has it: only the fields of its type."""
    likert, number = q.kind == Question.Kind.LIKERT, q.kind == Question.Kind.NUMBER
    return BlockQuestionSpec(
        key=q.key,
        type=q.kind,
        text=q.text,
        required=q.required,
        scale=_scale(q) if likert else None,
        options=tuple(q.options) if q.kind in CHOICE_TYPES else (),
        max_length=q.max_length if q.kind == Question.Kind.FREE_TEXT else None,
        min=_number(q.min_value) if number else None,
        max=_number(q.max_value) if number else None,
    )


def _number(value: float | None) -> int | float | None:
    # The column is a float; a whole bound was (almost always) written as an integer.
    return int(value) if value is not None and value.is_integer() else value


def study_spec(study: Study) -> StudySpec:
    """The study as a typed spec: what export_study_spec writes and import reads back."""
    questions = list(study.questions.order_by("order", "pk"))
    blocks = list(study.blocks.order_by("order", "pk"))
    analysis = study.design.get("analysis")
    return StudySpec(
        slug=study.slug,
        title=study.title,
        description=study.description,
        consent=study.consent_md,
        instructions=study.instructions_md,
        target_participants=study.target_participants,
        items_per_participant=study.items_per_participant,
        time_limit_minutes=study.time_limit_minutes,
        completion=CompletionSpec(code=study.completion_code, url=study.completion_url),
        recruitment_params=RecruitmentParams(
            **{**DEFAULT_RECRUITMENT_PARAMS, **(study.recruitment_params or {})}
        ),
        anonymous_links=study.anonymous_links,
        retention_days=study.retention_days,
        topic_choice=study.topic_choice,
        seed=study.seed,
        factors=tuple(FactorSpec.from_dict(f) for f in study.design.get("factors", [])),
        response_rule=tuple(
            RuleRowSpec.from_dict(r) for r in study.design.get("response_rule", [])
        ),
        questions=tuple(
            QuestionSpec(
                key=q.key,
                construct=q.construct,
                text=q.text,
                scale=_scale(q),
                reverse_coded=q.reverse_coded,
                required=q.required,
            )
            for q in questions
            if not q.is_attention_check and q.block_id is None
        ),
        attention_checks=tuple(
            AttentionCheckSpec(
                key=q.key,
                text=q.text,
                scale=_scale(q),
                correct=q.correct_value,
                after_item=q.after_item,
            )
            for q in questions
            if q.is_attention_check
        ),
        blocks=tuple(
            BlockSpec(
                key=b.key,
                title=b.title,
                intro=b.intro_md,
                placement=b.placement,
                questions=tuple(_block_question(q) for q in questions if q.block_id == b.pk),
            )
            for b in blocks
        ),
        analysis=AnalysisSpec.from_dict(analysis) if analysis else default_analysis(),
        # Studies stored before the quality section have {}: every rule off.
        quality=QualitySpec.from_dict(study.quality),
    )


def default_analysis() -> AnalysisSpec:
    """What a spec without an ``analysis`` section means (and what older studies stored)."""
    return AnalysisSpec()


def launch_problems(study: Study) -> list[str]:
    """Everything that stops a study from launching, in words a researcher can act on."""
    if study.status not in (Study.Status.DRAFT, Study.Status.REVIEW):
        return [f"the study is {study.status}; only a draft or reviewed study can be launched"]
    design = design_from_spec(study_spec(study))
    problems = check_design(design, RESPONSE_TYPES)
    if problems:
        return problems
    queries = list(Query.objects.filter(study=study).order_by("query_id"))
    if not queries:
        return ["the study has no queries: import stimuli first (import_stimuli SLUG FILE)"]
    needed_types = sorted(required_response_types(design))
    motivations = next((f.levels for f in design.factors if f.name == MOTIVATION_FACTOR), ())
    approved: dict[int, set[str]] = defaultdict(set)
    twice: set[tuple[int, str]] = set()
    for query_pk, response_type in ResponseVariant.objects.filter(
        query__study=study, review_status=ResponseVariant.ReviewStatus.APPROVED
    ).values_list("query_id", "response_type"):
        if response_type in approved[query_pk]:
            twice.add((query_pk, response_type))
        approved[query_pk].add(response_type)
    scenarios: dict[int, set[str]] = defaultdict(set)
    for query_pk, motivation in Scenario.objects.filter(query__study=study).values_list(
        "query_id", "motivation"
    ):
        scenarios[query_pk].add(motivation)
    problems = []
    for query in queries:
        missing = [t for t in needed_types if t not in approved[query.pk]]
        if missing:
            problems.append(
                f"query {query.query_id} has no approved response for: {', '.join(missing)}"
            )
        doubled = sorted(t for q, t in twice if q == query.pk)
        if doubled:
            problems.append(
                f"query {query.query_id} has more than one approved response for: "
                f"{', '.join(doubled)}; approve exactly one"
            )
        missing_scenarios = [m for m in motivations if m not in scenarios[query.pk]]
        if missing_scenarios:
            problems.append(
                f"query {query.query_id} has no scenario for motivation: "
                f"{', '.join(missing_scenarios)}"
            )
    if study.topic_choice:
        untitled = [q.query_id for q in queries if not q.topic]
        if untitled:
            problems.append(
                "topic_choice is on but these queries have no topic: " + ", ".join(untitled[:10])
            )
    return problems
