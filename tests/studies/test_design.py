"""Tests for studies.design: the response rule, design validation and the launch plan."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studies.design import (
    MAX_COMBINATIONS,
    AttentionSlot,
    Design,
    Factor,
    PlannedSlot,
    QueryRef,
    RuleRow,
    balanced_latin_square,
    between_cells,
    build_plan,
    check_design,
    required_response_types,
    response_type_for,
    within_cells,
    within_factors,
)

FIVE_TYPES = (
    "direct_refusal",
    "explanation_based",
    "redirection",
    "partial_compliance",
    "full_compliance",
)
REFUSALS = FIVE_TYPES[:4]
CATEGORIES = ("offensive_language", "dangerous_topics", "privacy_violation", "false_information")

# No example database: the test run must not write files into the project.
PROPERTY = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def every_type_design(items: int, rule: tuple[RuleRow, ...] | None = None) -> Design:
    """Design (a): one within factor, every participant sees every response type."""
    return Design(
        factors=(Factor("response_type", FIVE_TYPES, "within"),),
        rule=(RuleRow({}, "$response_type"),) if rule is None else rule,
        items_per_participant=items,
    )


SEED = Design(
    factors=(
        Factor("motivation", ("benign", "malicious"), "within"),
        Factor("alignment", ("aligned", "misaligned"), "within"),
        Factor("refusal_strategy", REFUSALS, "between"),
    ),
    rule=(
        RuleRow({"motivation": "benign", "alignment": "aligned"}, "full_compliance"),
        RuleRow({"motivation": "malicious", "alignment": "aligned"}, "$refusal_strategy"),
        RuleRow({"motivation": "benign", "alignment": "misaligned"}, "$refusal_strategy"),
        RuleRow({"motivation": "malicious", "alignment": "misaligned"}, "full_compliance"),
    ),
    items_per_participant=8,
)


def queries_per_category(per_category: int, categories=CATEGORIES) -> list[QueryRef]:
    """A query pool with ``per_category`` queries in each category."""
    return [QueryRef(f"{c}-{i}", c) for c in categories for i in range(per_category)]


def stimuli(slot: PlannedSlot):
    """The slot's stimulus items in page order."""
    return [item for item in slot.items if item.kind == "stimulus"]


def within_key(design: Design, item) -> tuple[str, ...]:
    """The item's within cell as a tuple of levels."""
    return tuple(item.levels[f.name] for f in within_factors(design))


def spread(counts: Counter, keys) -> int:
    """max - min of ``counts`` over ``keys`` (missing keys count 0)."""
    values = [counts[key] for key in keys]
    return max(values) - min(values)


def by_between_cell(plan: list[PlannedSlot]) -> dict[tuple, list[PlannedSlot]]:
    """Slots grouped by between cell, each group in slot order."""
    groups: dict[tuple, list[PlannedSlot]] = defaultdict(list)
    for slot in plan:
        groups[tuple(slot.cell.items())].append(slot)
    return groups


# --- strategies ----------------------------------------------------------------------------

NAMES = ("motivation", "alignment", "tone", "strategy", "length")
SHOWN = ("direct_refusal", "partial_compliance", "full_compliance")


@st.composite
def designs(draw, max_items: int = 36) -> Design:
    """Valid random designs: 1-3 within and 0-2 between factors of 2-3 levels."""
    n_within = draw(st.integers(1, 3))
    n_between = draw(st.integers(0, 2))
    names = draw(st.permutations(NAMES))[: n_within + n_between]
    factors = [
        Factor(
            name,
            tuple(f"{name}{i}" for i in range(draw(st.integers(2, 3)))),
            "within" if index < n_within else "between",
        )
        for index, name in enumerate(names)
    ]
    # Declared order mixes within and between factors.
    factors = draw(st.permutations(factors))
    k = math.prod(len(f.levels) for f in factors if f.assignment == "within")
    items = k * draw(st.integers(1, max(1, max_items // k)))
    shows = st.sampled_from(SHOWN + tuple(f"${f.name}" for f in factors))
    rows = []
    for _ in range(draw(st.integers(0, 3))):
        chosen = draw(st.lists(st.sampled_from(factors), max_size=2, unique_by=lambda f: f.name))
        rows.append(RuleRow({f.name: draw(st.sampled_from(f.levels)) for f in chosen}, draw(shows)))
    rows.append(RuleRow({}, draw(shows)))  # a catch-all keeps every combination covered
    checks = tuple(
        AttentionSlot(f"check{i}", draw(st.integers(0, items)))
        for i in range(draw(st.integers(0, 3)))
    )
    return Design(tuple(factors), tuple(rows), items, checks)


@st.composite
def plan_inputs(draw, topic: bool = False):
    """(design, queries, n_slots, seed) that build_plan must accept."""
    design = draw(designs())
    n = design.items_per_participant
    if topic:
        n_categories = draw(st.integers(1, 4))
        need = -(-n // n_categories)
        queries = [
            QueryRef(f"{c}-{i}", c)
            for c in CATEGORIES[:n_categories]
            for i in range(need + draw(st.integers(0, 3)))
        ]
    else:
        queries = [
            QueryRef(f"q{i:03d}", draw(st.sampled_from(CATEGORIES)))
            for i in range(n + draw(st.integers(0, 12)))
        ]
    queries = draw(st.permutations(queries))
    return design, queries, draw(st.integers(0, 60)), draw(st.integers(0, 2**32 - 1))


# --- the response rule ---------------------------------------------------------------------


def test_first_matching_row_wins():
    design = dataclasses.replace(
        SEED,
        rule=(
            RuleRow({"motivation": "benign"}, "full_compliance"),
            RuleRow({"alignment": "aligned"}, "direct_refusal"),
            RuleRow({}, "$refusal_strategy"),
        ),
    )
    base = {"refusal_strategy": "redirection"}
    expected = {
        ("benign", "aligned"): "full_compliance",  # row 1 also beats row 2 here
        ("malicious", "aligned"): "direct_refusal",
        ("malicious", "misaligned"): "redirection",
    }
    for (motivation, alignment), shown in expected.items():
        levels = {**base, "motivation": motivation, "alignment": alignment}
        assert response_type_for(design, levels) == shown


SEED_RULE = {
    ("benign", "aligned"): "full_compliance",
    ("malicious", "aligned"): "$refusal_strategy",
    ("benign", "misaligned"): "$refusal_strategy",
    ("malicious", "misaligned"): "full_compliance",
}


def test_seed_rule_maps_alignment():
    for strategy in REFUSALS:
        for (motivation, alignment), shown in SEED_RULE.items():
            levels = {"motivation": motivation, "alignment": alignment}
            levels["refusal_strategy"] = strategy
            expected = strategy if shown == "$refusal_strategy" else shown
            assert response_type_for(SEED, levels) == expected


def test_response_type_for_without_match_names_levels():
    design = dataclasses.replace(SEED, rule=SEED.rule[:1])
    with pytest.raises(ValueError, match="motivation=malicious, alignment=aligned"):
        response_type_for(
            design,
            {"motivation": "malicious", "alignment": "aligned", "refusal_strategy": "redirection"},
        )


def test_dollar_show_without_that_level_raises():
    with pytest.raises(ValueError, match=r"\$refusal_strategy"):
        response_type_for(SEED, {"motivation": "benign", "alignment": "misaligned"})


def test_empty_rule_means_show_response_type():
    design = every_type_design(5, rule=())
    assert check_design(design, FIVE_TYPES) == []
    for t in FIVE_TYPES:
        assert response_type_for(design, {"response_type": t}) == t
    assert required_response_types(design) == set(FIVE_TYPES)


# --- cells ---------------------------------------------------------------------------------


def test_cells_in_declared_order():
    assert within_cells(SEED) == [
        {"motivation": "benign", "alignment": "aligned"},
        {"motivation": "benign", "alignment": "misaligned"},
        {"motivation": "malicious", "alignment": "aligned"},
        {"motivation": "malicious", "alignment": "misaligned"},
    ]
    assert between_cells(SEED) == [{"refusal_strategy": s} for s in REFUSALS]


def test_empty_products_are_one_empty_cell():
    assert between_cells(every_type_design(5)) == [{}]
    no_within = Design((Factor("tone", ("a", "b"), "between"),), (RuleRow({}, "x"),), 3)
    assert within_cells(no_within) == [{}]
    assert within_cells(Design((), (RuleRow({}, "x"),), 1)) == [{}]


def test_required_response_types():
    assert required_response_types(SEED) == set(FIVE_TYPES)
    only_two = dataclasses.replace(
        SEED, factors=(*SEED.factors[:2], Factor("refusal_strategy", ("redirection",), "between"))
    )
    assert required_response_types(only_two) == {"full_compliance", "redirection"}
    huge = _with_factors(*(Factor(f"f{i}", tuple("abcdefghij"), "between") for i in range(4)))
    with pytest.raises(ValueError, match="combinations"):
        required_response_types(huge)


# --- check_design --------------------------------------------------------------------------


def test_required_designs_are_valid():
    assert check_design(SEED, FIVE_TYPES) == []
    assert check_design(every_type_design(5), FIVE_TYPES) == []
    assert check_design(every_type_design(10), FIVE_TYPES) == []


def _with_factors(*extra: Factor) -> Design:
    return dataclasses.replace(SEED, factors=(*SEED.factors, *extra))


def _with_rule(*rows: RuleRow) -> Design:
    return dataclasses.replace(SEED, rule=rows)


def _with_checks(*checks: AttentionSlot) -> Design:
    return dataclasses.replace(SEED, attention_checks=checks)


CATCH_ALL = RuleRow({}, "full_compliance")

PROBLEMS = {
    "duplicate factor": (
        _with_factors(Factor("motivation", ("x", "y"), "between")),
        ["factor 'motivation' is declared 2 times"],
    ),
    "no levels": (_with_factors(Factor("tone", (), "between")), ["factor 'tone' has no levels"]),
    "duplicate level": (
        _with_factors(Factor("tone", ("warm", "cold", "warm"), "between")),
        ["factor 'tone'", "'warm' 2 times"],
    ),
    "bad assignment": (
        _with_factors(Factor("tone", ("warm",), "sideways")),  # type: ignore[arg-type]
        ["factor 'tone'", "'sideways'"],
    ),
    "unknown factor in rule": (
        _with_rule(RuleRow({"mood": "happy"}, "full_compliance"), CATCH_ALL),
        ["row 1", "unknown factor 'mood'"],
    ),
    "unknown level in rule": (
        _with_rule(RuleRow({"motivation": "curious"}, "full_compliance"), CATCH_ALL),
        ["row 1", "'curious'", "'motivation'"],
    ),
    "dollar unknown factor": (
        _with_rule(RuleRow({}, "$strategy")),
        ["row 1", "'$strategy'", "no factor 'strategy'"],
    ),
    "empty show": (_with_rule(RuleRow({}, "")), ["row 1 has an empty show"]),
    "uncovered combination": (
        _with_rule(*SEED.rule[:3]),
        [
            "no response_rule row matches motivation=malicious, alignment=misaligned, "
            "refusal_strategy=direct_refusal"
        ],
    ),
    "unknown response type": (
        _with_rule(RuleRow({"motivation": "benign"}, "comply"), CATCH_ALL),
        ["motivation=benign, alignment=aligned, refusal_strategy=direct_refusal", "'comply'"],
    ),
    "empty rule": (_with_rule(), ["response_rule is empty"]),
    "zero items": (
        dataclasses.replace(SEED, items_per_participant=0),
        ["items_per_participant must be at least 1 (got 0)"],
    ),
    "items not a multiple": (
        dataclasses.replace(SEED, items_per_participant=6),
        [
            "items_per_participant (6) must be a multiple of the 4 within-participant cells "
            "(motivation × alignment) so each participant sees each cell equally often"
        ],
    ),
    "attention too late": (
        _with_checks(AttentionSlot("late", 9)),
        ["attention check 'late'", "after item 9", "0..8"],
    ),
    "attention negative": (
        _with_checks(AttentionSlot("early", -1)),
        ["attention check 'early'", "after item -1"],
    ),
    "duplicate attention key": (
        _with_checks(AttentionSlot("same", 1), AttentionSlot("same", 2)),
        ["attention check key 'same' is used 2 times"],
    ),
    "too many combinations": (
        _with_factors(*(Factor(f"f{i}", tuple("abcdefghij"), "between") for i in range(4))),
        [f"at most {MAX_COMBINATIONS}"],
    ),
}


@pytest.mark.parametrize("case", PROBLEMS, ids=list(PROBLEMS))
def test_check_design_names_the_culprit(case):
    design, fragments = PROBLEMS[case]
    problems = check_design(design, FIVE_TYPES)
    assert any(all(fragment in p for fragment in fragments) for p in problems), problems


def test_unknown_types_only_when_reachable():
    # A shadowed literal is never shown, so it is not a problem.
    design = _with_rule(RuleRow({}, "$refusal_strategy"), RuleRow({}, "never_shown"))
    assert check_design(design, FIVE_TYPES) == []
    assert check_design(SEED, ["full_compliance"]) != []


def test_many_uncovered_combinations_are_summarised():
    design = dataclasses.replace(
        SEED,
        factors=(*SEED.factors[:2], Factor("refusal_strategy", tuple("abcdefgh"), "between")),
        rule=(RuleRow({"refusal_strategy": "z"}, "full_compliance"),),
    )
    problems = check_design(design, FIVE_TYPES)
    matches = [p for p in problems if p.startswith("no response_rule row matches")]
    assert len(matches) == 10
    assert "... and 22 more combinations match no row" in problems


# --- Williams squares ----------------------------------------------------------------------


@pytest.mark.parametrize("k", range(1, 10))
def test_balanced_latin_square(k):
    rows = balanced_latin_square(k)
    assert len(rows) == (1 if k == 1 else k if k % 2 == 0 else 2 * k)
    for row in rows:
        assert sorted(row) == list(range(k))
    per = len(rows) // k
    for position in range(k):
        assert Counter(row[position] for row in rows) == {c: per for c in range(k)}
    # Carry-over balance: every ordered pair is adjacent equally often.
    pairs = Counter((row[i], row[i + 1]) for row in rows for i in range(k - 1))
    assert pairs == {(a, b): per for a in range(k) for b in range(k) if a != b}


def test_balanced_latin_square_rejects_zero():
    with pytest.raises(ValueError):
        balanced_latin_square(0)


# --- the two required designs, end to end --------------------------------------------------


@pytest.mark.parametrize("items", [5, 10])
def test_every_participant_sees_every_type(items):
    design = dataclasses.replace(
        every_type_design(items), attention_checks=(AttentionSlot("ac", items // 2),)
    )
    plan = build_plan(design, queries_per_category(3), n_slots=20, seed=7)
    for slot in plan:
        assert slot.cell == {}
        assert len(slot.items) == items + 1
        types = Counter(item.response_type for item in stimuli(slot))
        assert types == {t: items // 5 for t in FIVE_TYPES}
        assert all(item.levels == {"response_type": item.response_type} for item in stimuli(slot))
    # Ten Williams rows for five types: over slots 0..9 each type is at each position twice.
    first_block = Counter(
        (p, item.response_type) for s in plan[:10] for p, item in enumerate(stimuli(s)[:5])
    )
    assert set(first_block.values()) == {2}


def test_seed_design_plan():
    plan = build_plan(SEED, queries_per_category(2), n_slots=40, seed=2024)
    assert [s.index for s in plan] == list(range(40))
    for block in range(10):
        assert sorted(
            s.cell["refusal_strategy"] for s in plan[4 * block : 4 * block + 4]
        ) == sorted(REFUSALS)
    for slot in plan:
        items = stimuli(slot)
        assert len(items) == 8
        assert Counter((i.motivation, i.levels["alignment"]) for i in items) == {
            (m, a): 2 for m in ("benign", "malicious") for a in ("aligned", "misaligned")
        }
        strategy = slot.cell["refusal_strategy"]
        assert Counter(i.response_type for i in items) == {"full_compliance": 4, strategy: 4}
        assert len({i.query_id for i in items}) == 8
    # With exactly 8 queries, each query meets each motivation x alignment cell equally often
    # over every 4 rounds (16 slots).
    crossing = Counter((i.query_id, within_key(SEED, i)) for s in plan[:16] for i in stimuli(s))
    assert len(crossing) == 8 * 4 and set(crossing.values()) == {4}


def test_seed_design_topic_choice():
    plan = build_plan(SEED, queries_per_category(3), n_slots=32, seed=1, topic_choice=True)
    for slot in plan:
        items = stimuli(slot)
        assert all(i.query_id is None for i in items)
        assert Counter(i.category for i in items) == {c: 2 for c in CATEGORIES}
        # The two items of each motivation x alignment cell come from different categories.
        for cell in within_cells(SEED):
            key = tuple(cell.values())
            assert len({i.category for i in items if within_key(SEED, i) == key}) == 2


def test_all_between_and_no_factor_designs():
    all_between = Design(
        (Factor("refusal_strategy", REFUSALS, "between"),),
        (RuleRow({}, "$refusal_strategy"),),
        3,
    )
    plan = build_plan(all_between, queries_per_category(1), n_slots=9, seed=3)
    assert all(len(stimuli(s)) == 3 for s in plan)
    assert all(i.response_type == s.cell["refusal_strategy"] for s in plan for i in stimuli(s))
    bare = Design((), (RuleRow({}, "full_compliance"),), 2)
    plan = build_plan(bare, queries_per_category(1), n_slots=3, seed=3)
    assert all(
        i.levels == {} and i.response_type == "full_compliance" for s in plan for i in s.items
    )


# --- build_plan errors ---------------------------------------------------------------------


def test_too_few_queries():
    with pytest.raises(ValueError, match=r"8 items.*only 7 distinct"):
        build_plan(SEED, [QueryRef(f"q{i}", "c") for i in range(7)], n_slots=4, seed=0)


def test_duplicate_queries_count_once():
    refs = [QueryRef(f"q{i}", "c") for i in range(7)] + [QueryRef("q0", "c")]
    with pytest.raises(ValueError, match="only 7 distinct"):
        build_plan(SEED, refs, n_slots=4, seed=0)


def test_query_with_two_categories():
    refs = [QueryRef(f"q{i}", "c") for i in range(8)] + [QueryRef("q0", "d")]
    with pytest.raises(ValueError, match="'q0'.*two categories"):
        build_plan(SEED, refs, n_slots=4, seed=0)


def test_topic_category_too_small():
    # 8 items over 4 categories: a participant needs 2 topics from each.
    refs = [*queries_per_category(3, CATEGORIES[:3]), QueryRef("lonely", CATEGORIES[3])]
    with pytest.raises(ValueError, match=rf"'{CATEGORIES[3]}' has 1 queries"):
        build_plan(SEED, refs, n_slots=4, seed=0, topic_choice=True)
    # Without topic choice the same 10 queries are plenty.
    assert len(build_plan(SEED, refs, n_slots=4, seed=0)) == 4


def test_invalid_design_is_rejected():
    with pytest.raises(ValueError, match=r"cannot be planned.*multiple of the 4"):
        build_plan(
            dataclasses.replace(SEED, items_per_participant=6),
            queries_per_category(2),
            n_slots=4,
            seed=0,
        )


def test_negative_slots():
    with pytest.raises(ValueError, match="n_slots"):
        build_plan(SEED, queries_per_category(2), n_slots=-1, seed=0)


@PROPERTY
@given(design=designs(), missing=st.integers(1, 5), seed=st.integers(0, 100))
def test_too_few_queries_property(design, missing, seed):
    n = design.items_per_participant
    refs = [QueryRef(f"q{i}", "c") for i in range(max(0, n - missing))]
    with pytest.raises(ValueError, match="distinct queries"):
        build_plan(design, refs, n_slots=5, seed=seed)


# --- plan properties over random designs ---------------------------------------------------


@PROPERTY
@given(plan_inputs())
def test_plan_shape_levels_and_attention(args):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed)
    n = design.items_per_participant
    checks = design.attention_checks
    factor_names = [f.name for f in design.factors]
    assert [s.index for s in plan] == list(range(n_slots))
    for slot in plan:
        assert [item.position for item in slot.items] == list(range(1, n + len(checks) + 1))
        assert len(stimuli(slot)) == n
        assert set(slot.cell) == {f.name for f in design.factors if f.assignment == "between"}
        seen = 0
        attention_order = []
        for item in slot.items:
            if item.kind == "attention":
                attention_order.append((seen, item.attention_check))
                assert item.levels == {} and item.response_type == "" and item.motivation == ""
                assert item.query_id is None and item.category == ""
                continue
            seen += 1
            assert list(item.levels) == factor_names
            assert {k: item.levels[k] for k in slot.cell} == slot.cell
            assert item.response_type == response_type_for(design, item.levels)
            assert item.motivation == item.levels.get("motivation", "")
            assert item.attention_check is None
        # Each check sits after exactly after_item stimuli; ties keep their declared order.
        expected = sorted(((a.after_item, a.key) for a in checks), key=lambda pair: pair[0])
        assert attention_order == expected


@PROPERTY
@given(plan_inputs())
def test_between_cells_balanced_over_every_prefix(args):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed)
    cells = [tuple(c.items()) for c in between_cells(design)]
    counts: Counter = Counter()
    for slot in plan:
        counts[tuple(slot.cell.items())] += 1
        assert spread(counts, cells) <= 1
    assert set(counts) <= set(cells)


@PROPERTY
@given(plan_inputs())
def test_within_cells_equally_often_per_slot(args):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed)
    cells = [tuple(c.values()) for c in within_cells(design)]
    per_cell = design.items_per_participant // len(cells)
    for slot in plan:
        assert Counter(within_key(design, i) for i in stimuli(slot)) == dict.fromkeys(
            cells, per_cell
        )


def assert_order_counterbalanced(design: Design, plan: list[PlannedSlot]) -> int:
    """Assert Williams-row balance; return how many complete sets of rows were checked."""
    cells = [tuple(c.values()) for c in within_cells(design)]
    k = len(cells)
    n_rows = len(balanced_latin_square(k))
    blocks = design.items_per_participant // k
    checked = 0

    def assert_balanced(group: list[PlannedSlot]) -> None:
        # Every block of a complete set of rows puts each cell at each place equally often.
        for r in range(blocks):
            places = Counter(
                (p, within_key(design, item))
                for slot in group
                for p, item in enumerate(stimuli(slot)[r * k : (r + 1) * k])
            )
            expected = len(group) // k
            assert places == {(p, c): expected for p in range(k) for c in cells}

    # Within each between cell, so order is never confounded with the between condition...
    for group in by_between_cell(plan).values():
        for start in range(0, len(group) - n_rows + 1, n_rows):
            assert_balanced(group[start : start + n_rows])
            checked += 1
    # ...and therefore over every complete set of rows taken by slot index.
    span = n_rows * len(between_cells(design))
    for start in range(0, len(plan) - span + 1, span):
        assert_balanced(plan[start : start + span])
        checked += 1
    return checked


def assert_topic_balanced(design: Design, plan: list[PlannedSlot], queries) -> int:
    """Assert topic-mode category balance; return how many complete category cycles were checked."""
    n = design.items_per_participant
    categories = sorted({q.category for q in queries})
    available = Counter(q.category for q in queries)
    n_cat = len(categories)
    cells = [tuple(c.values()) for c in within_cells(design)]
    per_cell = n // len(cells)
    checked = 0
    for slot in plan:
        items = stimuli(slot)
        assert all(i.query_id is None for i in items)
        counts = Counter(i.category for i in items)
        assert spread(counts, categories) <= (0 if n % n_cat == 0 else 1)
        assert all(counts[c] <= available[c] for c in counts)
        # Each within cell's items spread over categories as evenly as possible.
        for cell in cells:
            of_cell = Counter(i.category for i in items if within_key(design, i) == cell)
            assert spread(of_cell, categories) <= 1
    # (within cell, category) pairs are balanced over every n_cat slots of a between cell.
    for group in by_between_cell(plan).values():
        for start in range(0, len(group) - n_cat + 1, n_cat):
            pairs = Counter(
                (within_key(design, i), i.category)
                for slot in group[start : start + n_cat]
                for i in stimuli(slot)
            )
            assert pairs == {(cell, c): per_cell for cell in cells for c in categories}
            checked += 1
    return checked


def _design(within: tuple[int, ...], between: tuple[int, ...], per_cell: int) -> Design:
    """A design with the given level counts, showing a literal type everywhere."""
    factors = [
        Factor(f"w{i}", tuple(f"w{i}_{j}" for j in range(n)), "within")
        for i, n in enumerate(within)
    ]
    factors += [
        Factor(f"b{i}", tuple(f"b{i}_{j}" for j in range(n)), "between")
        for i, n in enumerate(between)
    ]
    return Design(tuple(factors), (RuleRow({}, "full_compliance"),), math.prod(within) * per_cell)


FIXED_DESIGNS = {
    "seed": SEED,
    "every type x2": every_type_design(10),
    "3 within, 2 between": _design((3,), (2, 2), 2),
    "2x3 within": _design((2, 3), (), 1),
    "2x2 within, 3 between": _design((2, 2), (3,), 3),
}


@pytest.mark.parametrize("name", FIXED_DESIGNS)
def test_order_and_topics_over_complete_cycles(name):
    design = FIXED_DESIGNS[name]
    k = len(within_cells(design))
    span = len(balanced_latin_square(k)) * len(between_cells(design))
    pool = queries_per_category(design.items_per_participant)
    plan = build_plan(design, pool, n_slots=2 * span + 3, seed=11)
    assert assert_order_counterbalanced(design, plan) >= 2
    for n_cat in (1, 2, 3, 4):
        topics = queries_per_category(design.items_per_participant, CATEGORIES[:n_cat])
        plan = build_plan(design, topics, n_slots=2 * span + 3, seed=5, topic_choice=True)
        assert assert_topic_balanced(design, plan, topics) >= 2


@PROPERTY
@given(plan_inputs())
def test_order_counterbalanced(args):
    design, queries, n_slots, seed = args
    assert_order_counterbalanced(design, build_plan(design, queries, n_slots, seed))


@PROPERTY
@given(plan_inputs())
def test_queries_unique_per_slot_and_balanced(args):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed)
    category_of = {q.query_id: q.category for q in queries}
    usage: Counter = Counter()
    for slot in plan:
        ids = [i.query_id for i in stimuli(slot)]
        assert len(set(ids)) == len(ids)
        for item in stimuli(slot):
            assert item.category == category_of[item.query_id]
        usage.update(ids)
        assert spread(usage, category_of) <= 1


@PROPERTY
@given(plan_inputs(topic=True))
def test_topic_mode_balances_categories(args):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed, topic_choice=True)
    assert_topic_balanced(design, plan, queries)


@PROPERTY
@given(plan_inputs(), st.integers(0, 20), st.randoms(use_true_random=False))
def test_deterministic_and_extendable(args, extra, shuffler):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed)
    assert build_plan(design, queries, n_slots, seed) == plan
    # The caller's query order does not matter (querysets have no stable order).
    reordered = list(queries)
    shuffler.shuffle(reordered)
    assert build_plan(design, reordered, n_slots, seed) == plan
    # A longer plan extends a shorter one, so a study can recruit more participants.
    assert build_plan(design, queries, n_slots + extra, seed)[:n_slots] == plan


@PROPERTY
@given(plan_inputs(topic=True), st.integers(0, 20))
def test_topic_mode_deterministic_and_extendable(args, extra):
    design, queries, n_slots, seed = args
    plan = build_plan(design, queries, n_slots, seed, topic_choice=True)
    assert build_plan(design, queries, n_slots, seed, topic_choice=True) == plan
    assert build_plan(design, queries, n_slots + extra, seed, topic_choice=True)[:n_slots] == plan


def test_different_seeds_give_different_plans():
    plans = [build_plan(SEED, queries_per_category(3), n_slots=8, seed=seed) for seed in range(20)]
    assert len({repr(p) for p in plans}) == 20
