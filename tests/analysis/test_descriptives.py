"""Descriptives, distributions and eta squared against independent pandas/scipy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studies.analysis.descriptives import describe, distributions, eta_squared, groupings

FACTORS = ["response_type", "motivation", "alignment"]


@pytest.fixture(scope="module")
def ratings(likert_frame) -> pd.DataFrame:
    return likert_frame[likert_frame["kind"] == "stimulus"].reset_index(drop=True)


def test_groupings_cover_singles_pairs_and_all_three():
    names = ["×".join(g) for g in groupings(FACTORS)]
    assert names == [
        "response_type",
        "motivation",
        "alignment",
        "response_type×motivation",
        "response_type×alignment",
        "motivation×alignment",
        "response_type×motivation×alignment",
    ]


@pytest.mark.parametrize("combo", groupings(FACTORS), ids=lambda g: "×".join(g))
def test_descriptives_equal_an_independent_groupby(ratings, combo):
    measures = ["helpfulness", "frustration"]
    rows = describe(ratings, measures, FACTORS)
    mine = {
        (r["measure"], *(r[f] for f in combo)): r for r in rows if r["grouping"] == "×".join(combo)
    }
    expected = ratings[ratings["question"].isin(measures)].groupby(["question", *combo])["value"]
    assert len(mine) == expected.ngroups
    for key, values in expected:
        row = mine[key]
        n = len(values)
        mean, sd = values.mean(), values.std(ddof=1)
        half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
        assert row["n"] == n
        assert row["mean"] == pytest.approx(mean, abs=1e-12)
        assert row["sd"] == pytest.approx(sd, abs=1e-12)
        assert row["ci_low"] == pytest.approx(mean - half, abs=1e-12)
        assert row["ci_high"] == pytest.approx(mean + half, abs=1e-12)
        for factor in FACTORS:
            if factor not in combo:
                assert row[factor] is None


def test_rows_follow_display_order(ratings):
    rows = describe(ratings, ["frustration", "helpfulness"], FACTORS)
    assert rows[0]["measure"] == "frustration"
    by_type = [r["response_type"] for r in rows if r["grouping"] == "response_type"][:5]
    assert by_type == [
        "direct_refusal",
        "explanation_based",
        "redirection",
        "partial_compliance",
        "full_compliance",
    ]


def test_single_rating_cells_have_no_sd_or_ci():
    df = pd.DataFrame(
        {
            "question": ["h", "h", "h"],
            "response_type": ["a", "b", "b"],
            "motivation": ["benign"] * 3,
            "value": [4.0, 2.0, 6.0],
        }
    )
    rows = describe(df, ["h"], ["response_type", "motivation"])
    single = next(r for r in rows if r["grouping"] == "response_type" and r["response_type"] == "a")
    assert single["n"] == 1 and single["mean"] == 4.0
    assert single["sd"] is None and single["ci_low"] is None and single["ci_high"] is None


def test_distributions_count_each_scale_point(ratings):
    rows = distributions(ratings, ["helpfulness"])
    counts = ratings.loc[ratings["question"] == "helpfulness", "value"].value_counts()
    assert {r["value"]: r["count"] for r in rows} == {int(k): int(v) for k, v in counts.items()}
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert all(isinstance(r["value"], int) for r in rows)


def test_distributions_skip_non_integer_measures():
    df = pd.DataFrame({"question": ["c", "c"], "value": [3.5, 4.0]})
    assert distributions(df, ["c"]) == []


def test_eta_squared_is_between_over_total_sum_of_squares(ratings):
    rows = eta_squared(ratings, ["helpfulness"], FACTORS)
    data = ratings[ratings["question"] == "helpfulness"]
    grand = data["value"].mean()
    total = ((data["value"] - grand) ** 2).sum()
    for row in rows:
        means = data.groupby(row["factor"])["value"].transform("mean")
        assert row["eta_squared"] == pytest.approx(((means - grand) ** 2).sum() / total)
    eta = {r["factor"]: r["eta_squared"] for r in rows}
    # The simulated truth: response type matters most, motivation little.
    assert eta["response_type"] > 10 * eta["motivation"]


def test_eta_squared_of_a_constant_measure_is_none():
    df = pd.DataFrame({"question": ["h"] * 3, "response_type": ["a", "b", "b"], "value": [3.0] * 3})
    assert eta_squared(df, ["h"], ["response_type"])[0]["eta_squared"] is None
