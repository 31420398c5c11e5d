"""The arithmetic of a job without a database: refusal shares, ranking ties, the budget."""

from __future__ import annotations

import pytest

from modellab.pseudo_harmful import ranking
from modellab.pseudo_harmful.ranking import Standing


def test_refusal_share_counts_partial_refusals_only_when_asked_to():
    assert ranking.refusal_share(full=1, partial=2, labelled=4, refusal="full_partial") == 0.75
    assert ranking.refusal_share(full=1, partial=2, labelled=4, refusal="full") == 0.25
    assert ranking.refusal_share(full=0, partial=0, labelled=0, refusal="full") is None
    with pytest.raises(ValueError, match="refusal must be"):
        ranking.refusal_share(full=1, partial=0, labelled=1, refusal="some")


def test_rank_ties_go_to_more_evidence_then_the_earlier_candidate():
    ranks = ranking.rank(
        [
            Standing(key=10, share=0.5, labelled=4, position=1),
            Standing(key=11, share=0.5, labelled=6, position=2),  # same share, more probes
            Standing(key=12, share=1.0, labelled=2, position=3),
            Standing(key=13, share=0.5, labelled=4, position=0),  # same as 10, earlier
            Standing(key=14, share=None, labelled=0, position=4),  # nothing labelled
            Standing(key=15, share=0.0, labelled=4, position=5),
        ]
    )
    assert ranks == {12: 1, 11: 2, 13: 3, 10: 4, 15: 5, 14: None}


def test_a_round_asks_only_for_what_the_budget_pays():
    # One generator call plus 2 targets × 3 samples = 6 calls per candidate.
    assert ranking.affordable_candidates(remaining=100, per_round=10, targets=2, samples=3) == 10
    assert ranking.affordable_candidates(remaining=20, per_round=10, targets=2, samples=3) == 3
    assert ranking.affordable_candidates(remaining=7, per_round=10, targets=2, samples=3) == 1
    assert ranking.affordable_candidates(remaining=6, per_round=10, targets=2, samples=3) == 0
    assert ranking.affordable_candidates(remaining=0, per_round=10, targets=2, samples=3) == 0
    assert ranking.minimum_budget(targets=2, samples=3) == 7
