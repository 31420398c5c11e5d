"""Wilson intervals and false-refusal rates against statsmodels' independent computation."""

from __future__ import annotations

import pytest
from statsmodels.stats.proportion import proportion_confint

from modellab.false_refusal.rates import (
    Proportion,
    rates_by_group,
    refusal_rates,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("count", "n"), [(0, 1), (1, 1), (0, 20), (3, 20), (10, 20), (20, 20), (137, 2069), (1, 3)]
)
def test_wilson_interval_equals_statsmodels(count, n):
    low, high = wilson_interval(count, n)
    expected = proportion_confint(count, n, alpha=0.05, method="wilson")
    assert low == pytest.approx(expected[0], abs=1e-12)
    assert high == pytest.approx(expected[1], abs=1e-12)


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ValueError, match="at least one"):
        wilson_interval(0, 0)
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(5, 4)


# A fixture of labelled responses: (group, label) as a run or a PHTest evaluation file has them.
FIXTURE = (
    [("harmless", "full_compliance")] * 14
    + [("harmless", "full_refusal")] * 4
    + [("harmless", "partial_refusal")] * 2
    + [("harmless", "unparsed")] * 3
    + [("controversial", "1_full_compliance")] * 5
    + [("controversial", "2_full_refusal")] * 3
    + [("controversial", "3_partial_refusal")] * 1
    + [("controversial", "redirection")] * 1  # five-way: partial refusal
    + [("controversial", "direct_refusal")] * 2  # five-way: full refusal
)


def test_rates_per_group_match_statsmodels_and_leave_unparsed_out():
    harmless, controversial = rates_by_group(FIXTURE)
    assert harmless.group == "harmless" and controversial.group == "controversial"
    # harmless: 20 labelled, 3 unparsed counted but not in n.
    assert (harmless.n, harmless.unparsed) == (20, 3)
    assert (harmless.full.count, harmless.full_or_partial.count) == (4, 6)
    assert harmless.full.rate == pytest.approx(4 / 20)
    assert (harmless.full.ci_low, harmless.full.ci_high) == pytest.approx(
        proportion_confint(4, 20, method="wilson")
    )
    assert (harmless.full_or_partial.ci_low, harmless.full_or_partial.ci_high) == pytest.approx(
        proportion_confint(6, 20, method="wilson")
    )
    # controversial: aliases and five-way names map onto the three-way labels.
    assert controversial.n == 12 and controversial.unparsed == 0
    assert (controversial.full_refusal, controversial.partial_refusal) == (5, 2)
    assert controversial.full_or_partial.rate == pytest.approx(7 / 12)
    assert (controversial.full.ci_low, controversial.full.ci_high) == pytest.approx(
        proportion_confint(5, 12, method="wilson")
    )


def test_unknown_label_is_an_error_never_compliance():
    with pytest.raises(ValueError, match="unknown label 'refused'"):
        refusal_rates(["full_refusal", "refused"])


def test_a_group_with_only_unparsed_labels_has_no_rate():
    rates = refusal_rates(["unparsed", "unparsed"])
    assert rates.n == 0 and rates.unparsed == 2
    assert rates.full == Proportion(0, 0, None, None, None)


def test_groups_come_in_phtest_order_then_alphabetically():
    pairs = [("zeta", "full_refusal"), ("controversial", "full_refusal")]
    pairs += [("alpha", "full_refusal"), ("harmless", "full_refusal")]
    assert [r.group for r in rates_by_group(pairs)] == [
        "harmless",
        "controversial",
        "alpha",
        "zeta",
    ]
