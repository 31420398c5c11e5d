"""The pure statistics of model behaviour against hand counts and statsmodels' Wilson interval."""

from __future__ import annotations

import math

import pytest
from statsmodels.stats.proportion import proportion_confint

from modellab.behaviour import figures
from modellab.behaviour.stats import ALL, distribution_rows, wilson_interval

LABELS = ("full_compliance", "full_refusal", "partial_refusal")


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 10), (3, 10), (10, 10), (1, 48), (47, 48)])
def test_wilson_interval_equals_statsmodels(k, n):
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert wilson_interval(k, n) == (pytest.approx(low), pytest.approx(high))
    low90, high90 = proportion_confint(k, n, alpha=0.10, method="wilson")
    assert wilson_interval(k, n, 0.90) == (pytest.approx(low90), pytest.approx(high90))


def test_wilson_interval_edges():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    low, high = wilson_interval(0, 5)
    assert low == 0.0 and 0 < high < 1
    for bad in [(-1, 3), (4, 3), (1, -1)]:
        with pytest.raises(ValueError):
            wilson_interval(*bad)


def test_distribution_rows_count_each_cell_and_pool_categories_and_framings():
    observations = [
        ("m", "privacy", "benign", "full_compliance"),
        ("m", "privacy", "benign", "full_compliance"),
        ("m", "privacy", "benign", "full_refusal"),
        ("m", "privacy", "benign", "unparsed"),
        ("m", "danger", "benign", "full_refusal"),
        ("m", "danger", "query_only", "partial_refusal"),
    ]
    rows = distribution_rows(observations, LABELS, framings=("query_only", "benign"))
    by = {(r["category"], r["framing"], r["label"]): r for r in rows}
    cell = by[("privacy", "benign", "full_compliance")]
    assert (cell["count"], cell["n"], cell["n_unparsed"], cell["n_responses"]) == (2, 3, 1, 4)
    assert cell["share"] == pytest.approx(2 / 3)
    assert (cell["ci_low"], cell["ci_high"]) == tuple(
        pytest.approx(v) for v in proportion_confint(2, 3, method="wilson")
    )
    pooled = by[(ALL, "benign", "full_refusal")]
    assert (pooled["count"], pooled["n"], pooled["n_unparsed"]) == (2, 4, 1)
    overall = {r["label"]: r["count"] for r in rows if r["category"] == r["framing"] == ALL}
    assert overall == {"full_compliance": 2, "full_refusal": 2, "partial_refusal": 1}
    # Cells in order: categories sorted then (all); the given framings first, then (all).
    cells = list(dict.fromkeys((r["category"], r["framing"]) for r in rows))
    assert cells == [
        ("danger", "query_only"),
        ("danger", "benign"),
        ("danger", ALL),
        ("privacy", "benign"),
        ("privacy", ALL),
        (ALL, "query_only"),
        (ALL, "benign"),
        (ALL, ALL),
    ]
    with pytest.raises(ValueError, match="not one of"):
        distribution_rows([("m", "c", "benign", "maybe")], LABELS)


def test_a_cell_of_unparsed_answers_only_has_no_share_but_is_counted_and_drawn():
    rows = distribution_rows([("m", "c", "benign", "unparsed")], LABELS)
    cell = rows[0]
    assert cell["n"] == 0 and cell["n_unparsed"] == 1 and cell["share"] is None
    assert cell["ci_low"] is None
    figure = figures.model_figure(rows, "m", LABELS)
    assert "1 unparsed" in figure.data[0].x[1][0]
    table = figures.table_for(rows, "m", LABELS)
    assert table[0]["n_unparsed"] == 1 and table[0]["cells"][0]["ci"] == "—"
