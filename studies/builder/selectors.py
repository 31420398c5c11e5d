"""Reads of the study builder: the plan preview a researcher checks before launch."""

from __future__ import annotations

from dataclasses import dataclass

from studies import selectors
from studies.design import (
    PlannedSlot,
    QueryRef,
    between_cells,
    build_plan,
    check_design,
    describe_levels,
    within_cells,
)
from studies.domain import RESPONSE_TYPES
from studies.models import Study
from studies.spec import design_from_spec


@dataclass(frozen=True)
class CellPreview:
    levels: dict[str, str]

    @property
    def label(self) -> str:
        return describe_levels(self.levels) or "(one cell: no between-participants factor)"


@dataclass(frozen=True)
class PlanPreview:
    problems: list[str]
    cells: list[CellPreview]
    target: int
    # Fewest and most slots a between cell gets for the target (equal when it divides).
    slots_per_cell: tuple[int, int]
    within_cells: list[dict[str, str]]
    repeats_per_within_cell: int
    n_queries: int
    example: PlannedSlot | None
    example_problem: str
    query_texts: dict[str, str]


def plan_preview(study: Study) -> PlanPreview:
    """The between cells, slots per cell for the target, and slot 0's full sequence.

    The example is built by the same ``build_plan`` call the launch makes, so what the
    researcher sees is what the first participant gets.
    """
    design = design_from_spec(selectors.study_spec(study))
    problems = check_design(design, RESPONSE_TYPES)
    if problems:
        return PlanPreview(problems, [], study.target_participants, (0, 0), [], 0, 0, None, "", {})
    b_cells = between_cells(design)
    w_cells = within_cells(design)
    target = study.target_participants
    # Slots are dealt in rounds of one per between cell, so cells differ by at most one.
    base, extra = divmod(target, len(b_cells))
    cells = [CellPreview(levels=cell) for cell in b_cells]
    queries = list(study.queries.order_by("query_id"))
    example, example_problem = None, ""
    if queries:
        try:
            example = build_plan(
                design,
                [QueryRef(query_id=q.query_id, category=q.category) for q in queries],
                n_slots=1,
                seed=study.seed,
                topic_choice=study.topic_choice,
            )[0]
        except ValueError as exc:
            example_problem = str(exc)
    return PlanPreview(
        problems=[],
        cells=cells,
        target=target,
        slots_per_cell=(base, base + (1 if extra else 0)),
        within_cells=w_cells,
        repeats_per_within_cell=design.items_per_participant // max(len(w_cells), 1),
        n_queries=len(queries),
        example=example,
        example_problem=example_problem,
        query_texts={q.query_id: q.text for q in queries},
    )
