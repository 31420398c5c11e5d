"""The reward statistics against values worked out by hand (the arithmetic is in comments)."""

from __future__ import annotations

import math

import pytest

from modellab.rewards.agreement import (
    by_response_type,
    correlation,
    matched,
    pairwise_agreement,
    zscores,
)


def test_zscores_use_the_population_sd_over_all_scores():
    # values 1, 2, 3, 6: mean 3; deviations -2, -1, 0, 3; squares 4+1+0+9 = 14;
    # population variance 14/4 = 3.5, SD = sqrt(3.5) = 1.870829.
    sd = math.sqrt(3.5)
    assert zscores([1, 2, 3, 6]) == pytest.approx([-2 / sd, -1 / sd, 0.0, 3 / sd])


def test_zscores_without_spread_are_none():
    assert zscores([2.0, 2.0, 2.0]) == [None, None, None]
    assert zscores([5.0]) == [None]


def test_by_response_type_raw_and_z_within_the_scorer():
    # Scores: direct_refusal 1, 3; full_compliance 6, 2. All four: mean 3, population SD
    # sqrt(((1-3)^2 + 0 + 3^2 + 1)/4) = sqrt(14/4) = sqrt(3.5).
    # direct_refusal: raw mean 2, sample SD sqrt(((1-2)^2+(3-2)^2)/1) = sqrt(2);
    #   z = (-2, 0)/sqrt(3.5): mean -1/sqrt(3.5) = -0.534522, SD sqrt(2)/sqrt(3.5).
    # full_compliance: raw mean 4, SD sqrt(8); z = (3, -1)/sqrt(3.5): mean 1/sqrt(3.5).
    rows = [
        ("full_compliance", 6.0),
        ("direct_refusal", 1.0),
        ("direct_refusal", 3.0),
        ("full_compliance", 2.0),
    ]
    result = by_response_type(rows, order=("direct_refusal", "redirection", "full_compliance"))
    sd = math.sqrt(3.5)
    assert [r["response_type"] for r in result] == ["direct_refusal", "full_compliance"]
    direct, full = result
    assert direct["n"] == 2 and direct["mean"] == pytest.approx(2.0)
    assert direct["sd"] == pytest.approx(math.sqrt(2))
    assert direct["z_mean"] == pytest.approx(-1 / sd)
    assert direct["z_sd"] == pytest.approx(math.sqrt(2) / sd)
    assert full["mean"] == pytest.approx(4.0) and full["sd"] == pytest.approx(math.sqrt(8))
    assert full["z_mean"] == pytest.approx(1 / sd)


def test_correlation_without_ties():
    # human 1, 2, 3, 4; reward 10, 30, 20, 40 → reward ranks 1, 3, 2, 4.
    # Spearman: d = 0, -1, 1, 0, sum d^2 = 2, rho = 1 - 6*2 / (4*(16-1)) = 1 - 12/60 = 0.8.
    # Pairs (6): only (2nd, 3rd) is ordered differently (humans 2 < 3, reward 30 > 20):
    # concordant 5, discordant 1; Kendall tau = (5-1)/6 = 0.666667; agreement 5/6.
    result = correlation([10, 30, 20, 40], [1, 2, 3, 4])
    assert result["n"] == 4
    assert result["spearman"] == pytest.approx(0.8)
    assert result["kendall"] == pytest.approx(4 / 6)
    assert result["pairs"] == 6 and result["pairs_compared"] == 6 and result["pairs_agree"] == 5
    assert result["pairwise_agreement"] == pytest.approx(5 / 6)
    assert result["human_ties"] == 0 and result["reward_ties"] == 0


def test_correlation_with_ties_on_both_sides():
    # human 1, 1, 2, 3; reward 5, 6, 6, 7.
    # Pairs: (a,b) humans tie → excluded; (b,c) humans 1 < 2 but reward 6 = 6 → reward tie,
    # excluded; the other four are ordered alike by both: agreement 4/4 = 1.
    # Kendall tau-b = (nc - nd) / sqrt((n0 - n1)(n0 - n2)) = (4 - 0) / sqrt((6-1)(6-1)) = 0.8.
    # Spearman on average ranks: human 1.5, 1.5, 3, 4; reward 1, 2.5, 2.5, 4; both mean 2.5;
    # deviations h -1, -1, .5, 1.5 and r -1.5, 0, 0, 1.5: sum of products 1.5 + 2.25 = 3.75,
    # sums of squares 4.5 and 4.5, so rho = 3.75 / 4.5 = 0.833333.
    result = correlation([5, 6, 6, 7], [1, 1, 2, 3])
    assert result["spearman"] == pytest.approx(3.75 / 4.5)
    assert result["kendall"] == pytest.approx(0.8)
    assert (result["pairs"], result["human_ties"], result["reward_ties"]) == (6, 1, 1)
    assert result["pairs_compared"] == 4 and result["pairs_agree"] == 4
    assert result["pairwise_agreement"] == 1.0


def test_reversed_order_disagrees_on_every_pair():
    # Three stimuli ordered exactly the other way: rho = tau = -1, 0 of 3 pairs agree.
    result = correlation([3, 2, 1], [1, 2, 3])
    assert result["spearman"] == pytest.approx(-1.0) and result["kendall"] == pytest.approx(-1.0)
    assert result["pairwise_agreement"] == 0.0


def test_too_few_stimuli_or_no_spread_give_no_coefficient():
    assert correlation([1, 2], [2, 1])["spearman"] is None
    flat = correlation([1, 1, 1], [1, 2, 3])
    assert flat["spearman"] is None and flat["kendall"] is None
    # Every pair is a reward tie: nothing compared, no agreement figure.
    assert flat["pairs_compared"] == 0 and flat["pairwise_agreement"] is None


def test_pairwise_agreement_needs_one_value_per_stimulus():
    with pytest.raises(ValueError):
        pairwise_agreement([1, 2], [1, 2, 3])


def test_matched_keeps_stimuli_both_sides_have():
    keys, reward, human = matched({"a": 1.0, "b": 2.0, "c": 3.0}, {"b": 5.0, "c": 4.0, "d": 1.0})
    assert keys == ["b", "c"] and reward == [2.0, 3.0] and human == [5.0, 4.0]
