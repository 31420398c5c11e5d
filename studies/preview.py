"""Reads behind the participant preview: one example participant's pages, built from the
study's plan in memory — no slot, no participant, nothing written anywhere.

The preview's position and answers live only in the researcher's session (studies.views.preview).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studies import lifecycle
from studies.design import PlannedItem, PlannedSlot, between_cells
from studies.models import Query, Question, QuestionnaireBlock, ResponseVariant, Scenario, Study
from studies.selectors import study_spec
from studies.spec import design_from_spec

# Pages in order: consent, instructions, "before" blocks, items, "after" blocks, done —
# the order the participant pages use (annotation.selectors.participant_step).
CONSENT, INSTRUCTIONS, DONE = "consent", "instructions", "done"


def example_count(study: Study) -> int:
    """How many different example participants the preview offers: one per between cell."""
    try:
        return len(between_cells(design_from_spec(study_spec(study))))
    except (ValueError, KeyError, TypeError):
        # A draft's design may be incomplete; preview_problems says what is missing.
        return 1


def example_slot(study: Study, example: int = 0) -> PlannedSlot:
    """Example participant ``example`` (0-based) of the study's plan; ValueError if none."""
    plan, _ = lifecycle.study_plan(study, example + 1)
    return plan[example]


def preview_problems(study: Study) -> list[str]:
    """Why the study cannot be previewed yet, in words a researcher can act on."""
    try:
        example_slot(study)
    except ValueError as exc:
        return [str(exc)]
    return []


def blocks(study: Study) -> tuple[list[QuestionnaireBlock], list[QuestionnaireBlock]]:
    """The study's questionnaire blocks shown before and after the rated items, in order."""
    rows = list(QuestionnaireBlock.objects.filter(study=study).order_by("order", "pk"))
    before = [b for b in rows if b.placement == QuestionnaireBlock.Placement.BEFORE]
    return before, [b for b in rows if b not in before]


def pages(study: Study, slot: PlannedSlot) -> list[str]:
    """Every page of the example participant: "consent", "block:KEY", "item:N", "done"…"""
    before, after = blocks(study)
    return [
        CONSENT,
        INSTRUCTIONS,
        *(f"block:{b.key}" for b in before),
        *(f"item:{item.position}" for item in slot.items),
        *(f"block:{b.key}" for b in after),
        DONE,
    ]


@dataclass(frozen=True)
class PreviewItem:
    """The participant item template's ``page``, without a slot item or a trial row."""

    item: PlannedItem
    trial: object | None
    scenario: str = ""
    topics: list[Query] = field(default_factory=list)


@dataclass(frozen=True)
class PreviewTrial:
    query: Query
    variant: object


@dataclass(frozen=True)
class MissingVariant:
    text: str


def variant_for(query: Query, response_type: str) -> ResponseVariant | MissingVariant:
    """The text a participant would see: the approved variant the participant side picks."""
    variant = (
        ResponseVariant.objects.filter(
            query=query,
            response_type=response_type,
            review_status=ResponseVariant.ReviewStatus.APPROVED,
        )
        .order_by("model_name", "sample")
        .first()
    )
    if variant is None:
        return MissingVariant(
            f"[Preview: query {query.query_id} has no approved “{response_type}” text yet; "
            "participants cannot be shown this item until one is approved.]"
        )
    return variant


def item_page(
    study: Study, item: PlannedItem, *, chosen_query: int | None, seen: list[int]
) -> PreviewItem:
    """What the item page shows: the topics on offer, or the query, scenario and response."""
    if item.kind == "attention":
        return PreviewItem(item=item, trial=None)
    query = None
    if item.query_id:
        query = Query.objects.filter(study=study, query_id=item.query_id).first()
    elif chosen_query is not None:
        query = Query.objects.filter(study=study, category=item.category, pk=chosen_query).first()
    if query is None:
        topics = list(
            Query.objects.filter(study=study, category=item.category)
            .exclude(pk__in=seen)
            .order_by("topic", "query_id")
        )
        return PreviewItem(item=item, trial=None, topics=topics)
    scenario = ""
    if item.motivation:
        scenario = (
            Scenario.objects.filter(query=query, motivation=item.motivation)
            .values_list("text", flat=True)
            .first()
            or ""
        )
    return PreviewItem(
        item=item,
        trial=PreviewTrial(query=query, variant=variant_for(query, item.response_type)),
        scenario=scenario,
    )


def item_questions(study: Study, item: PlannedItem) -> list[Question]:
    """The questions of an item page: its attention check, or every rated-item question."""
    if item.kind == "attention":
        return list(Question.objects.filter(study=study, key=item.attention_check))
    return list(
        Question.objects.filter(study=study, is_attention_check=False, block__isnull=True).order_by(
            "order"
        )
    )


def block_questions(block: QuestionnaireBlock) -> list[Question]:
    return list(Question.objects.filter(block=block).order_by("order", "pk"))
