"""Pure design math: factors, the response rule, and the participant plan built at launch.

Nothing here touches Django or the database, so the same functions validate a spec file,
tell the generator which response types it must produce, and build the launch plan.

Conventions:

* Factor levels combine in declared order (factors in ``Design.factors`` order, levels in
  ``Factor.levels`` order); every "cell" is a ``dict`` from factor name to level.
* An empty response rule is allowed when a factor is literally named ``response_type``: it
  then means ``show: $response_type`` (each item shows the response type it was assigned),
  which is the simple "every participant sees every type" design.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

# A factor named RESPONSE_TYPE_FACTOR needs no rule rows: an empty rule means
# "show: $response_type".
from studies.domain import MOTIVATION_FACTOR, RESPONSE_TYPE_FACTOR

Assignment = Literal["between", "within"]
ItemKind = Literal["stimulus", "attention"]


@dataclass(frozen=True)
class Factor:
    name: str
    levels: tuple[str, ...]
    assignment: Assignment


@dataclass(frozen=True)
class RuleRow:
    """When every ``when`` pair matches an item's levels, show ``show``.

    ``show`` is a response type, or ``"$name"`` meaning "the level of factor ``name``".
    """

    when: dict[str, str]
    show: str


@dataclass(frozen=True)
class AttentionSlot:
    key: str
    after_item: int


@dataclass(frozen=True)
class Design:
    factors: tuple[Factor, ...]
    rule: tuple[RuleRow, ...]
    items_per_participant: int
    attention_checks: tuple[AttentionSlot, ...] = ()


@dataclass(frozen=True)
class QueryRef:
    query_id: str
    category: str


@dataclass(frozen=True)
class PlannedItem:
    position: int
    kind: ItemKind
    levels: dict[str, str] = field(default_factory=dict)
    response_type: str = ""
    motivation: str = ""
    query_id: str | None = None
    category: str = ""
    attention_check: str | None = None


@dataclass(frozen=True)
class PlannedSlot:
    index: int
    cell: dict[str, str]
    items: tuple[PlannedItem, ...]


# Far beyond any perception study; stops a typo'd spec from making validation enumerate forever.
MAX_COMBINATIONS = 10_000
# Per-combination problems are capped so one bad rule doesn't bury every other message.
_MAX_LISTED = 10


# --- cells ---------------------------------------------------------------------------------


def _cartesian(factors: Iterable[Factor]) -> list[dict[str, str]]:
    """All level combinations of ``factors`` in declared order ([{}] for no factors)."""
    factors = list(factors)
    names = [f.name for f in factors]
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(f.levels for f in factors))
    ]


def within_factors(design: Design) -> tuple[Factor, ...]:
    """The design's within-participant factors, in declared order."""
    return tuple(f for f in design.factors if f.assignment == "within")


def between_factors(design: Design) -> tuple[Factor, ...]:
    """The design's between-participant factors, in declared order."""
    return tuple(f for f in design.factors if f.assignment == "between")


def within_cells(design: Design) -> list[dict[str, str]]:
    """Every combination of within-participant levels, in declared order."""
    return _cartesian(within_factors(design))


def between_cells(design: Design) -> list[dict[str, str]]:
    """Every combination of between-participant levels, in declared order."""
    return _cartesian(between_factors(design))


def describe_levels(levels: Mapping[str, str]) -> str:
    """Render levels as ``name=level, name=level`` for messages."""
    return ", ".join(f"{name}={level}" for name, level in levels.items())


# --- the response rule ---------------------------------------------------------------------


def _effective_rule(design: Design) -> tuple[RuleRow, ...]:
    """The rule as written, or ``show: $response_type`` if it is empty and that factor exists."""
    if design.rule:
        return design.rule
    if any(f.name == RESPONSE_TYPE_FACTOR for f in design.factors):
        return (RuleRow(when={}, show=f"${RESPONSE_TYPE_FACTOR}"),)
    return ()


def _matching_row(rule: Sequence[RuleRow], levels: Mapping[str, str]) -> int | None:
    """Index of the first row whose ``when`` pairs all match ``levels``, else None."""
    for i, row in enumerate(rule):
        if all(levels.get(name) == level for name, level in row.when.items()):
            return i
    return None


def response_type_for(design: Design, levels: Mapping[str, str]) -> str:
    """The response type shown for an item with these factor levels (first matching row wins)."""
    rule = _effective_rule(design)
    i = _matching_row(rule, levels)
    if i is None:
        raise ValueError(f"no response_rule row matches {describe_levels(levels)}")
    show = rule[i].show
    if show.startswith("$"):
        name = show[1:]
        if name not in levels:
            raise ValueError(
                f"response_rule row {i + 1} shows {show!r} but there is no level for "
                f"factor {name!r} in {describe_levels(levels)}"
            )
        return levels[name]
    return show


def required_response_types(design: Design) -> set[str]:
    """Every response type the rule produces over all full level combinations."""
    n_combinations = math.prod(len(f.levels) for f in design.factors)
    if n_combinations > MAX_COMBINATIONS:
        # Same limit as check_design, so a runaway spec fails fast instead of hanging.
        raise ValueError(f"the factors make {n_combinations} level combinations")
    out: set[str] = set()
    for levels in _cartesian(design.factors):
        # Uncovered combinations are check_design's business; the generator only needs
        # what can actually be shown, so skipping them keeps this usable on drafts.
        try:
            out.add(response_type_for(design, levels))
        except ValueError:
            continue
    return out


# --- validation ----------------------------------------------------------------------------


def _listed(problems: list[str], extra: int, what: str) -> list[str]:
    """Cap a list of per-combination problems, summarising the rest in one line."""
    if extra > 0:
        problems.append(f"... and {extra} more combinations {what}")
    return problems


def _design_problems(design: Design, known: set[str] | None) -> list[str]:
    """check_design's body; ``known=None`` skips the response-type membership check."""
    problems: list[str] = []
    levels_of: dict[str, tuple[str, ...]] = {}

    # Factors.
    for name, count in Counter(f.name for f in design.factors).items():
        if count > 1:
            problems.append(f"factor {name!r} is declared {count} times")
    for f in design.factors:
        levels_of.setdefault(f.name, f.levels)
        if f.assignment not in ("between", "within"):
            problems.append(
                f"factor {f.name!r} has assignment {f.assignment!r}; expected 'between' or 'within'"
            )
        if len(f.levels) < 1:
            problems.append(f"factor {f.name!r} has no levels")
        for level, count in Counter(f.levels).items():
            if count > 1:
                problems.append(f"factor {f.name!r} lists level {level!r} {count} times")

    # Rule rows refer only to declared factors and levels.
    rule = _effective_rule(design)
    if not rule:
        problems.append(
            "response_rule is empty; add rows, or declare a factor named "
            f"{RESPONSE_TYPE_FACTOR!r} so each item shows its own level"
        )
    for i, row in enumerate(rule, start=1):
        for name, level in row.when.items():
            if name not in levels_of:
                problems.append(f"response_rule row {i} names unknown factor {name!r}")
            elif level not in levels_of[name]:
                problems.append(
                    f"response_rule row {i} uses level {level!r}, which factor {name!r} "
                    f"does not have (levels: {', '.join(levels_of[name])})"
                )
        if not row.show:
            problems.append(f"response_rule row {i} has an empty show")
        elif row.show.startswith("$") and row.show[1:] not in levels_of:
            problems.append(
                f"response_rule row {i} shows {row.show!r} but there is no factor {row.show[1:]!r}"
            )

    # Every full combination is covered and yields a known response type.
    n_combinations = math.prod(len(f.levels) for f in design.factors)
    if n_combinations > MAX_COMBINATIONS:
        problems.append(
            f"the factors make {n_combinations} level combinations; "
            f"at most {MAX_COMBINATIONS} are supported"
        )
    elif rule:
        uncovered: list[str] = []
        unknown: list[str] = []
        n_uncovered = n_unknown = 0
        for levels in _cartesian(design.factors):
            i = _matching_row(rule, levels)
            if i is None:
                n_uncovered += 1
                if len(uncovered) < _MAX_LISTED:
                    uncovered.append(f"no response_rule row matches {describe_levels(levels)}")
                continue
            show = rule[i].show
            shown = levels.get(show[1:]) if show.startswith("$") else show
            # None: "$x" with unknown x, already reported above.
            if known is not None and shown is not None and shown not in known:
                n_unknown += 1
                if len(unknown) < _MAX_LISTED:
                    unknown.append(
                        f"{describe_levels(levels)} would show {shown!r}, which is not a "
                        f"response type (known: {', '.join(sorted(known))})"
                    )
        problems += _listed(uncovered, n_uncovered - len(uncovered), "match no row")
        problems += _listed(unknown, n_unknown - len(unknown), "show an unknown type")

    # Items: every participant sees every within cell equally often.
    n = design.items_per_participant
    if n < 1:
        problems.append(f"items_per_participant must be at least 1 (got {n})")
    else:
        within = within_factors(design)
        k = math.prod(len(f.levels) for f in within)
        if k > 0 and n % k:
            problems.append(
                f"items_per_participant ({n}) must be a multiple of the {k} "
                f"within-participant cells ({' × '.join(f.name for f in within)}) "
                "so each participant sees each cell equally often"
            )

    # Attention checks.
    for key, count in Counter(a.key for a in design.attention_checks).items():
        if count > 1:
            problems.append(f"attention check key {key!r} is used {count} times")
    for a in design.attention_checks:
        if not 0 <= a.after_item <= max(n, 0):
            problems.append(
                f"attention check {a.key!r} comes after item {a.after_item}, outside 0..{max(n, 0)}"
            )
    return problems


def check_design(design: Design, response_types: Sequence[str]) -> list[str]:
    """Human-readable problems with ``design``; empty when it can be planned."""
    return _design_problems(design, set(response_types))


# --- order counterbalancing ----------------------------------------------------------------


def balanced_latin_square(k: int) -> list[list[int]]:
    """Williams design rows over 0..k-1: k rows for even k, 2k rows (with reversals) for odd k."""
    if k < 1:
        raise ValueError(f"a Latin square needs at least one treatment (got {k})")
    if k == 1:
        return [[0]]
    # First row 0, 1, k-1, 2, k-2, ...: its successive differences are all distinct mod k,
    # so cyclic shifts of it make every ordered pair adjacent exactly once.
    first = [0]
    lo, hi = 1, k - 1
    while len(first) < k:
        first.append(lo)
        lo += 1
        if len(first) < k:
            first.append(hi)
            hi -= 1
    rows = [[(x + i) % k for x in first] for i in range(k)]
    if k % 2:
        # For odd k one square cannot balance carry-over; adding the mirrored rows does.
        rows += [row[::-1] for row in rows]
    return rows


# --- the plan ------------------------------------------------------------------------------


def _distinct_queries(queries: Iterable[QueryRef]) -> list[QueryRef]:
    """One QueryRef per id, sorted by id so the plan ignores the caller's ordering."""
    by_id: dict[str, QueryRef] = {}
    for q in queries:
        prev = by_id.setdefault(q.query_id, q)
        if prev.category != q.category:
            raise ValueError(
                f"query {q.query_id!r} is listed with two categories "
                f"({prev.category!r} and {q.category!r})"
            )
    return [by_id[query_id] for query_id in sorted(by_id)]


def _page_layout(design: Design) -> tuple[list[int], list[tuple[int, str]]]:
    """Page numbers (from 1) of each stimulus, and (page, key) of each attention check."""
    # Stable sort: checks sharing an after_item keep their declared order.
    checks = sorted(design.attention_checks, key=lambda a: a.after_item)
    n = design.items_per_participant
    stimulus_pages: list[int] = []
    check_pages: list[tuple[int, str]] = []
    page, c = 1, 0
    for j in range(n + 1):
        while c < len(checks) and checks[c].after_item == j:
            check_pages.append((page, checks[c].key))
            page, c = page + 1, c + 1
        if j < n:
            stimulus_pages.append(page)
            page += 1
    return stimulus_pages, check_pages


def build_plan(
    design: Design,
    queries: Sequence[QueryRef],
    n_slots: int,
    seed: int,
    topic_choice: bool = False,
) -> list[PlannedSlot]:
    """Deterministic, balanced participant slots for ``design``; ValueError if impossible.

    * Between cells: slot ``s`` is in round ``b = s // B`` (B between cells); each round is
      a seeded permutation of all cells, so every prefix of slots is balanced to within 1.
      Because each round holds each cell once, ``b`` is also how many earlier slots share
      this slot's between cell, and the per-round choices below are balanced *within each
      between cell*, not just overall.
    * Within cells: ``items_per_participant = m * k`` (k within cells); the slot shows m
      blocks, block ``r`` ordered by Williams row ``(b + r) mod R``.
    * Queries: one seeded shuffle of the distinct queries, consumed cyclically in slot
      order, so usage counts over any prefix of slots differ by at most 1.
    * Topic mode: items carry a category but no query (the participant picks a topic
      later). With ``t = m mod C``, occurrence r of within cell c gets category
      ``(c * max(t, 1) + r + b) mod C``: each cell walks through consecutive categories
      (so its m items spread over categories as evenly as possible), the cells' leftover
      ``t`` categories tile the circle (so the slot's categories differ by at most 1, and
      not at all when C divides the items), and the shift by round ``b`` balances
      (within cell, category) pairs over every C rounds.
    * Later slots never change earlier ones: the plan for N slots is a prefix of the plan
      for more slots with the same seed, so a study can be extended.
    """
    problems = _design_problems(design, known=None)
    if problems:
        raise ValueError("the design cannot be planned: " + "; ".join(problems))
    if n_slots < 0:
        raise ValueError(f"n_slots must be at least 0 (got {n_slots})")

    n = design.items_per_participant
    pool = _distinct_queries(queries)
    if len(pool) < n:
        raise ValueError(
            f"each participant sees {n} items with no query repeated, but only "
            f"{len(pool)} distinct queries were given"
        )

    w_cells = within_cells(design)
    b_cells = between_cells(design)
    k, n_between = len(w_cells), len(b_cells)
    m = n // k
    rows = balanced_latin_square(k)
    factor_order = [f.name for f in design.factors]

    # Fixed-size draws come first and per-round draws after, so a longer plan with the same
    # seed extends a shorter one instead of reshuffling it.
    rng = random.Random(seed)
    query_order = list(pool)
    rng.shuffle(query_order)
    categories: list[str] = []
    column_step = 1
    if topic_choice:
        per_category = Counter(q.category for q in pool)
        categories = sorted(per_category)
        rng.shuffle(categories)
        # Each slot holds ceil(n / C) or floor(n / C) items per category, and over the
        # rounds every category gets the larger share, so each must have that many topics.
        need = -(-n // len(categories))
        short = [c for c in sorted(per_category) if per_category[c] < need]
        if short:
            raise ValueError(
                f"with {n} items over {len(categories)} categories a participant can get "
                f"{need} items from one category, but "
                + ", ".join(f"{c!r} has {per_category[c]} queries" for c in short)
            )
        # t == 0 needs no tiling; stepping by 1 then keeps a block from being one category.
        column_step = max(m % len(categories), 1)

    # The rule's answer depends only on the (between, within) cell pair.
    levels_for = {
        (bi, wi): {name: {**b, **w}[name] for name in factor_order}
        for bi, b in enumerate(b_cells)
        for wi, w in enumerate(w_cells)
    }
    type_for = {key: response_type_for(design, levels) for key, levels in levels_for.items()}

    stimulus_pages, check_pages = _page_layout(design)

    slots: list[PlannedSlot] = []
    permutation: list[int] = []
    for s in range(n_slots):
        b, i = divmod(s, n_between)
        if i == 0:
            permutation = rng.sample(range(n_between), n_between)
        bi = permutation[i]
        # Attention pages are the same for every slot; stimuli fill the pages around them.
        pages: list[PlannedItem] = [
            PlannedItem(position=page, kind="attention", attention_check=key)
            for page, key in check_pages
        ]
        j = 0
        for r in range(m):
            for wi in rows[(b + r) % len(rows)]:
                if topic_choice:
                    query_id = None
                    category = categories[(wi * column_step + r + b) % len(categories)]
                else:
                    # Consecutive positions of the cyclic list are distinct while n <= #queries.
                    q = query_order[(s * n + j) % len(query_order)]
                    query_id, category = q.query_id, q.category
                levels = dict(levels_for[(bi, wi)])
                pages.append(
                    PlannedItem(
                        position=stimulus_pages[j],
                        kind="stimulus",
                        levels=levels,
                        response_type=type_for[(bi, wi)],
                        motivation=levels.get(MOTIVATION_FACTOR, ""),
                        query_id=query_id,
                        category=category,
                    )
                )
                j += 1
        pages.sort(key=lambda item: item.position)
        slots.append(PlannedSlot(index=s, cell=dict(b_cells[bi]), items=tuple(pages)))
    return slots
