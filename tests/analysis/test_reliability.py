"""Cronbach's and Krippendorff's alpha on data with a known structure; attention pass rates."""

from __future__ import annotations

import krippendorff
import numpy as np
import pandas as pd
import pytest

from studies.analysis.reliability import (
    _interval_alpha,
    attention_pass_rates,
    cronbach,
    cronbach_alphas,
    krippendorff_alphas,
)


def _items_frame(values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Long rows: one stimulus per row of ``values``, one question per column."""
    n = len(values)
    frames = [
        pd.DataFrame(
            {
                "participant_id": [f"p{i // 8}" for i in range(n)],
                "item_position": [i % 8 + 1 for i in range(n)],
                "query_id": [f"q{i % 16}" for i in range(n)],
                "response_type": "full_compliance",
                "question": name,
                "value": values[:, j],
            }
        )
        for j, name in enumerate(names)
    ]
    return pd.concat(frames, ignore_index=True)


def test_cronbach_matches_the_textbook_formula():
    x = np.array([[1, 2, 2], [3, 3, 4], [4, 5, 4], [2, 2, 3], [5, 4, 5.0]])
    k = 3
    expected = k / (k - 1) * (1 - x.var(axis=0, ddof=1).sum() / x.sum(axis=1).var(ddof=1))
    assert cronbach(x) == pytest.approx(expected)
    assert cronbach(x[:, :1]) is None
    assert cronbach(np.ones((4, 3))) is None


def test_items_of_one_latent_factor_are_consistent_and_noise_is_not():
    rng = np.random.default_rng(0)
    latent = rng.normal(0, 1, (2000, 1))
    one_factor = np.clip(np.round(4 + latent + rng.normal(0, 0.6, (2000, 4))), 1, 7)
    noise = np.clip(np.round(4 + rng.normal(0, 1.2, (2000, 4))), 1, 7)
    names = ["a", "b", "c", "d"]
    high, _ = cronbach_alphas(_items_frame(one_factor, names), {"latent": names})
    low, _ = cronbach_alphas(_items_frame(noise, names), {"noise": names})
    assert high[0]["alpha"] > 0.85 and high[0]["n"] == 2000
    assert abs(low[0]["alpha"]) < 0.1


def test_reverse_coded_items_are_flipped_before_alpha():
    rng = np.random.default_rng(1)
    latent = rng.normal(0, 1, (1000, 1))
    values = np.clip(np.round(4 + latent + rng.normal(0, 0.5, (1000, 3))), 1, 7)
    values[:, 2] = 8 - values[:, 2]  # the third item is worded the other way
    df = _items_frame(values, ["a", "b", "r"])
    plain, _ = cronbach_alphas(df, {"c": ["a", "b", "r"]})
    flipped, _ = cronbach_alphas(df, {"c": ["a", "b", "r"]}, reverse_coded=["r"], points=7)
    assert plain[0]["alpha"] < 0.3
    assert flipped[0]["alpha"] > 0.8


def test_incomplete_stimuli_and_unknown_items():
    values = np.array([[1, 2], [3, 4], [5, 5], [2, 3.0]])
    df = _items_frame(values, ["a", "b"])
    df = df.drop(index=df.index[(df["question"] == "b") & (df["item_position"] == 1)])
    rows, warnings = cronbach_alphas(df, {"c": ["a", "b", "zzz"]})
    assert rows[0]["n"] == 3
    assert any("zzz" in w for w in warnings)


def _kripp_frame(unit_effect_sd: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    units = [(f"q{q:02d}", t) for q in range(16) for t in ("a", "b", "c", "d", "e")]
    effect = rng.normal(0, unit_effect_sd, len(units))
    rows = []
    for p in range(300):
        for u in rng.choice(len(units), 8, replace=False):
            value = np.clip(np.round(4 + effect[u] + rng.normal(0, 1)), 1, 7)
            rows.append((f"p{p}", units[u][0], units[u][1], "h", value))
    return pd.DataFrame(
        rows, columns=["participant_id", "query_id", "response_type", "question", "value"]
    )


def test_krippendorff_alpha_is_near_zero_for_noise_and_high_for_strong_unit_effects():
    noise, _ = krippendorff_alphas(_kripp_frame(0.0, 2), ["h"])
    strong, _ = krippendorff_alphas(_kripp_frame(2.0, 3), ["h"])
    assert abs(noise[0]["alpha"]) < 0.05
    assert strong[0]["alpha"] > 0.6
    assert noise[0]["level"] == "ordinal" and noise[0]["n_units"] == 80


def test_krippendorff_from_value_counts_equals_the_coders_by_units_table():
    df = _kripp_frame(1.0, 4)
    ours, _ = krippendorff_alphas(df, ["h"])
    table = df.assign(unit=df["query_id"] + "/" + df["response_type"]).pivot(
        index="participant_id", columns="unit", values="value"
    )
    expected = krippendorff.alpha(
        reliability_data=table.to_numpy(dtype=float), level_of_measurement="ordinal"
    )
    assert ours[0]["alpha"] == pytest.approx(expected)


def test_closed_form_interval_alpha_equals_the_library():
    df = _kripp_frame(1.0, 5)
    unit = (df["query_id"] + "/" + df["response_type"]).to_numpy()
    codes = pd.factorize(unit)[0]
    table = df.assign(unit=unit).pivot(index="participant_id", columns="unit", values="value")
    expected = krippendorff.alpha(
        reliability_data=table.to_numpy(dtype=float), level_of_measurement="interval"
    )
    assert _interval_alpha(df["value"].to_numpy(dtype=float), codes) == pytest.approx(expected)


def test_continuous_values_use_the_interval_metric_with_a_warning():
    df = _kripp_frame(1.0, 6)
    df["value"] = df["value"] + np.random.default_rng(0).normal(0, 0.01, len(df))
    rows, warnings = krippendorff_alphas(df, ["h"])
    assert rows[0]["level"] == "interval" and rows[0]["alpha"] is not None
    assert warnings


def test_units_rated_once_are_left_out():
    df = pd.DataFrame(
        {
            "participant_id": ["p1", "p2", "p3"],
            "query_id": ["q1", "q1", "q2"],
            "response_type": ["a", "a", "a"],
            "question": "h",
            "value": [3.0, 4.0, 6.0],
        }
    )
    rows, _ = krippendorff_alphas(df, ["h"])
    assert rows[0]["n_units"] == 1


def test_attention_pass_rates_per_check_and_overall():
    att = pd.DataFrame(
        {
            "question": ["attention_1"] * 4 + ["attention_2"] * 2,
            "value": [3, 3, 3, 5, 3, 1.0],
            "correct": [3.0] * 6,
        }
    )
    rows = attention_pass_rates(att)
    assert rows == [
        {"check": "attention_1", "n": 4, "pass_rate": 0.75},
        {"check": "attention_2", "n": 2, "pass_rate": 0.5},
        {"check": "all", "n": 6, "pass_rate": pytest.approx(4 / 6)},
    ]
    assert attention_pass_rates(att.iloc[0:0]) == []
