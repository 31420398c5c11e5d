"""A running study's fixed parts (questions, blocks, texts, slot items), read once per process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from annotation.models import SlotItem
from studies.domain import STUDY_CONTINUE_STATUSES
from studies.models import Query, Question, QuestionnaireBlock, ResponseVariant, Scenario, Study

# How many studies and slots one process keeps; a study of thousands of queries is a few MB.
_STUDIES_KEPT = 32
_SLOTS_KEPT = 20_000


@dataclass(frozen=True)
class StudyMaterial:
    """What every participant of one study sees the same: never written while it runs.

    The review services refuse edits to a launched study's texts and the builder edits drafts
    only, so for live, paused and closed studies this can be kept per process, keyed by the
    study row's version (status, updated_at, launched_at).
    """

    # Rated items' questions, in the order shown (block questions and attention checks apart).
    item_questions: tuple[Question, ...]
    attention_checks: dict[int, Question]
    # Questionnaire blocks in the order shown: "before" ones, then "after" ones.
    blocks: tuple[QuestionnaireBlock, ...]
    block_questions: dict[int, tuple[Question, ...]]
    queries: dict[int, Query]
    # Category → its queries as topics are offered: by topic, then query id.
    topics: dict[str, tuple[Query, ...]]
    # (query pk, response type) → the approved text shown, first by model name and sample.
    variants: dict[tuple[int, str], ResponseVariant]
    # (query pk, motivation) → the scenario text.
    scenarios: dict[tuple[int, str], str]

    @cached_property
    def variants_by_pk(self) -> dict[int, ResponseVariant]:
        return {variant.pk: variant for variant in self.variants.values()}

    @cached_property
    def before_blocks(self) -> tuple[QuestionnaireBlock, ...]:
        return tuple(b for b in self.blocks if b.placement == QuestionnaireBlock.Placement.BEFORE)

    @cached_property
    def after_blocks(self) -> tuple[QuestionnaireBlock, ...]:
        return tuple(b for b in self.blocks if b.placement == QuestionnaireBlock.Placement.AFTER)


def study_material(study: Study) -> StudyMaterial:
    """The study's fixed parts: from this process's cache once the study runs, else fresh."""
    if study.status in STUDY_CONTINUE_STATUSES:
        return _kept_material(study.pk, study.status, study.updated_at, study.launched_at)
    return load_study_material(study.pk)


@lru_cache(maxsize=_STUDIES_KEPT)
def _kept_material(study_pk: int, status: str, updated_at, launched_at) -> StudyMaterial:
    # The version fields are part of the key only: a changed study row is a new entry.
    return load_study_material(study_pk)


def in_showing_order(blocks) -> list[QuestionnaireBlock]:
    """Questionnaire blocks as participants meet them: "before" ones, then "after" ones."""
    blocks = list(blocks.order_by("order", "pk"))
    return [b for b in blocks if b.placement == QuestionnaireBlock.Placement.BEFORE] + [
        b for b in blocks if b.placement == QuestionnaireBlock.Placement.AFTER
    ]


def load_study_material(study_pk: int) -> StudyMaterial:
    questions = list(Question.objects.filter(study_id=study_pk).order_by("order", "pk"))
    blocks = in_showing_order(QuestionnaireBlock.objects.filter(study_id=study_pk))
    queries = list(Query.objects.filter(study_id=study_pk).order_by("topic", "query_id"))
    topics: dict[str, list[Query]] = {}
    for query in queries:
        topics.setdefault(query.category, []).append(query)
    variants: dict[tuple[int, str], ResponseVariant] = {}
    approved = ResponseVariant.objects.filter(
        query__study_id=study_pk, review_status=ResponseVariant.ReviewStatus.APPROVED
    ).order_by("model_name", "sample", "pk")
    for variant in approved:
        variants.setdefault((variant.query_id, variant.response_type), variant)
    scenarios = {
        (query_pk, motivation): text
        for query_pk, motivation, text in Scenario.objects.filter(
            query__study_id=study_pk
        ).values_list("query_id", "motivation", "text")
    }
    return StudyMaterial(
        item_questions=tuple(
            q for q in questions if not q.is_attention_check and q.block_id is None
        ),
        attention_checks={q.pk: q for q in questions if q.is_attention_check},
        blocks=tuple(blocks),
        block_questions={
            block.pk: tuple(q for q in questions if q.block_id == block.pk) for block in blocks
        },
        queries={query.pk: query for query in queries},
        topics={category: tuple(items) for category, items in topics.items()},
        variants=variants,
        scenarios=scenarios,
    )


@lru_cache(maxsize=_SLOTS_KEPT)
def slot_items(slot_id: int) -> tuple[SlotItem, ...]:
    """A slot's items in position order; fixed once the slot is created."""
    return tuple(SlotItem.objects.filter(slot_id=slot_id).order_by("position"))


def slot_item(slot_id: int, position: int) -> SlotItem:
    items = slot_items(slot_id)
    if not 1 <= position <= len(items) or items[position - 1].position != position:
        # Positions are 1..n without gaps; anything else is not a page of this slot.
        raise SlotItem.DoesNotExist(f"slot {slot_id} has no item {position}")
    return items[position - 1]
