"""Gap reduction: known ratio recovered, bootstrap equals a plain resampling loop, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studies.analysis import gaps
from studies.analysis.gaps import gap_reductions
from tests.analysis.simulate import DEFAULT_EFFECTS, simulate_long_format


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    df = simulate_long_format(480, seed=21, effects=DEFAULT_EFFECTS, rounded=True)
    return df[df["kind"] == "stimulus"].reset_index(drop=True)


def _row(rows, measure, kind):
    return next(r for r in rows if r["measure"] == measure and r["response_type"] == kind)


def test_known_ratio_is_recovered_with_a_ci_around_it(ratings):
    """True partial-compliance gap = 0.4 x direct-refusal gap for helpfulness: reduction 0.6."""
    rows, warnings = gap_reductions(ratings, ["helpfulness", "frustration"], reps=1000, seed=1)
    assert warnings == []
    partial = _row(rows, "helpfulness", "partial_compliance")
    assert partial["reduction"] == pytest.approx(0.6, abs=0.08)
    assert partial["ci_low"] < 0.6 < partial["ci_high"]
    assert partial["ci_high"] - partial["ci_low"] < 0.3
    assert partial["bootstrap_reps"] == 1000
    # Frustration's gap runs the other way (refusals frustrate more): same formula, 1 - 0.6/1.6.
    frustration = _row(rows, "frustration", "partial_compliance")
    assert frustration["reduction"] == pytest.approx(0.625, abs=0.1)
    # Reference and baseline get no rows of their own.
    assert {r["response_type"] for r in rows} == {
        "explanation_based",
        "redirection",
        "partial_compliance",
    }


def test_point_estimate_comes_from_cell_means(ratings):
    rows, _ = gap_reductions(ratings, ["helpfulness"], reps=0)
    means = ratings[ratings["question"] == "helpfulness"].groupby("response_type")["value"].mean()
    row = _row(rows, "helpfulness", "redirection")
    assert row["reference_mean"] == pytest.approx(means["full_compliance"])
    assert row["baseline_mean"] == pytest.approx(means["direct_refusal"])
    expected = 1 - (means["full_compliance"] - means["redirection"]) / (
        means["full_compliance"] - means["direct_refusal"]
    )
    assert row["reduction"] == pytest.approx(expected)
    assert row["ci_low"] is None


def test_vectorised_bootstrap_equals_a_plain_participant_resampling_loop(ratings):
    data = ratings[ratings["question"] == "helpfulness"]
    reps, seed = 50, 7
    rows, _ = gap_reductions(data, ["helpfulness"], reps=reps, seed=seed)
    participants = np.unique(data["participant_id"].to_numpy(dtype=str))
    # Each participant's ratings as (type, value) arrays; a resample stacks the drawn ones.
    own = {
        p: (g["response_type"].to_numpy(), g["value"].to_numpy())
        for p, g in data.groupby("participant_id")
    }
    ratios = []
    for weights in gaps._bootstrap_weights(len(participants), reps, seed):
        for w in weights:
            drawn = np.repeat(participants, w.astype(int))
            types = np.concatenate([own[p][0] for p in drawn])
            values = np.concatenate([own[p][1] for p in drawn])
            m = pd.Series(values).groupby(types).mean()
            ratios.append(
                1
                - (m["full_compliance"] - m["partial_compliance"])
                / (m["full_compliance"] - m["direct_refusal"])
            )
    row = _row(rows, "helpfulness", "partial_compliance")
    assert row["ci_low"] == pytest.approx(np.percentile(ratios, 2.5))
    assert row["ci_high"] == pytest.approx(np.percentile(ratios, 97.5))


def test_bootstrap_weights_are_multinomial_counts():
    chunks = list(gaps._bootstrap_weights(30, 2000, 0))
    weights = np.vstack(chunks)
    assert weights.shape == (2000, 30)
    assert (weights.sum(axis=1) == 30).all()
    # Each participant is drawn Binomial(30, 1/30) times: mean 1, variance 29/30.
    assert weights.mean() == pytest.approx(1.0)
    assert weights.var() == pytest.approx(29 / 30, rel=0.05)


def test_same_seed_same_interval(ratings):
    a, _ = gap_reductions(ratings, ["helpfulness"], reps=200, seed=3)
    b, _ = gap_reductions(ratings, ["helpfulness"], reps=200, seed=3)
    c, _ = gap_reductions(ratings, ["helpfulness"], reps=200, seed=4)
    assert a == b
    assert a != c


def test_no_baseline_gap_gives_none(ratings):
    data = ratings[ratings["question"] == "helpfulness"].copy()
    # Give direct refusal exactly the reference mean.
    ref_mean = data.loc[data["response_type"] == "full_compliance", "value"].mean()
    data.loc[data["response_type"] == "direct_refusal", "value"] = ref_mean
    rows, warnings = gap_reductions(data, ["helpfulness"], reps=100)
    assert all(r["reduction"] is None and r["ci_low"] is None for r in rows)
    assert any("no gap to reduce" in w for w in warnings)


@pytest.mark.parametrize("absent", ["full_compliance", "direct_refusal"])
def test_missing_reference_or_baseline_gives_none_and_a_warning(ratings, absent):
    data = ratings[(ratings["question"] == "helpfulness") & (ratings["response_type"] != absent)]
    rows, warnings = gap_reductions(data, ["helpfulness"], reps=100)
    assert rows and all(r["reduction"] is None for r in rows)
    assert any(absent in w and "has no ratings" in w for w in warnings)


def test_missing_type_gives_a_none_row(ratings):
    data = ratings[
        (ratings["question"] == "helpfulness") | (ratings["response_type"] != "redirection")
    ]
    rows, _ = gap_reductions(data, ["helpfulness", "frustration"], reps=50)
    assert _row(rows, "frustration", "redirection")["reduction"] is None
    assert _row(rows, "helpfulness", "redirection")["reduction"] is not None
