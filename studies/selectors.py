"""Reads of the researcher side: a study's spec as data, and whether it can be launched."""

from __future__ import annotations

from collections import defaultdict

from studies.design import check_design, required_response_types
from studies.domain import MOTIVATION_FACTOR, RESPONSE_TYPES
from studies.models import Query, ResponseVariant, Scenario, Study
from studies.spec import design_from_spec


def _scale(question) -> dict:
    return {
        "points": question.points,
        "anchors": {
            int(k): v for k, v in sorted(question.anchors.items(), key=lambda kv: int(kv[0]))
        },
    }


def study_spec(study: Study) -> dict:
    """The study as a normalised spec dict: what export_study_spec writes, import reads back."""
    questions = list(study.questions.order_by("order"))
    return {
        "slug": study.slug,
        "title": study.title,
        "description": study.description,
        "consent": study.consent_md,
        "instructions": study.instructions_md,
        "target_participants": study.target_participants,
        "items_per_participant": study.items_per_participant,
        "time_limit_minutes": study.time_limit_minutes,
        "completion": {"code": study.completion_code, "url": study.completion_url},
        "recruitment_params": dict(study.recruitment_params),
        "topic_choice": study.topic_choice,
        "seed": study.seed,
        "factors": study.design.get("factors", []),
        "response_rule": study.design.get("response_rule", []),
        "questions": [
            {
                "key": q.key,
                "construct": q.construct,
                "text": q.text,
                "scale": _scale(q),
                "reverse_coded": q.reverse_coded,
                "required": q.required,
            }
            for q in questions
            if not q.is_attention_check
        ],
        "attention_checks": [
            {
                "key": q.key,
                "text": q.text,
                "scale": _scale(q),
                "correct": q.correct_value,
                "after_item": q.after_item,
            }
            for q in questions
            if q.is_attention_check
        ],
        "analysis": study.design.get("analysis") or default_analysis(),
    }


def default_analysis() -> dict:
    """What a spec without an ``analysis`` section means (and what older studies stored)."""
    from studies.spec import DEFAULT_BASELINE_LEVEL, DEFAULT_REFERENCE_LEVEL

    return {
        "reference_level": DEFAULT_REFERENCE_LEVEL,
        "baseline_level": DEFAULT_BASELINE_LEVEL,
        "composites": [],
    }


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


def study_progress(study: Study) -> dict:
    """Counts a researcher watches: the participant funnel and slots filled per cell."""
    from django.db.models import Count

    from annotation.models import Participant, Slot

    funnel = dict(
        Participant.objects.filter(study=study)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    cells: dict[str, dict[str, int]] = defaultdict(
        lambda: {"claimed": 0, "completed": 0, "free": 0}
    )
    for cell, status, n in (
        Slot.objects.filter(study=study).values_list("cell", "status").annotate(n=Count("id"))
    ):
        label = ", ".join(f"{k}={v}" for k, v in sorted(cell.items())) or "(single cell)"
        cells[label][status] += n
    joined = sum(funnel.values())
    return {
        "study": study,
        "joined": joined,
        "consented": Participant.objects.filter(study=study, consented_at__isnull=False).count(),
        "funnel": funnel,
        "completed": funnel.get(Participant.Status.COMPLETED, 0),
        "cells": dict(sorted(cells.items())),
    }
