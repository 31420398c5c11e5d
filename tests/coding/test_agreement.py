"""Agreement statistics of human coding equal independent implementations (krippendorff,
statsmodels), and the majority/classifier comparison follows its documented rules."""

from __future__ import annotations

import random

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from annotation.coding import agreement

LABELS = ("full_compliance", "full_refusal", "partial_refusal")


def _random_codes(seed: int, items: int, coders: int, missing: float) -> dict:
    """Codes with a true category per item that coders mostly follow, some codes missing."""
    rng = random.Random(seed)
    codes = {}
    for item in range(items):
        truth = rng.choice(LABELS)
        codes[item] = {
            f"c{c}": truth if rng.random() < 0.7 else rng.choice(LABELS)
            for c in range(coders)
            if rng.random() >= missing
        }
    return codes


def _statsmodels_cohen(pairs) -> float:
    table = np.zeros((len(LABELS), len(LABELS)))
    for a, b in pairs:
        table[LABELS.index(a), LABELS.index(b)] += 1
    return cohens_kappa(table).kappa


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cohen_kappa_equals_statsmodels(seed):
    codes = _random_codes(seed, items=60, coders=2, missing=0.0)
    pairs = [(v["c0"], v["c1"]) for v in codes.values()]
    assert agreement.cohen_kappa(pairs) == pytest.approx(_statsmodels_cohen(pairs), abs=1e-12)


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_fleiss_kappa_equals_statsmodels(seed):
    codes = _random_codes(seed, items=50, coders=4, missing=0.0)
    units = [list(v.values()) for v in codes.values()]
    table, _ = aggregate_raters(np.array([[LABELS.index(c) for c in u] for u in units]))
    assert agreement.fleiss_kappa(units) == pytest.approx(fleiss_kappa(table), abs=1e-12)


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_krippendorff_alpha_equals_the_krippendorff_package_with_missing_codes(seed):
    codes = _random_codes(seed, items=40, coders=5, missing=0.3)
    coders = [f"c{c}" for c in range(5)]
    reliability = [
        [LABELS.index(v[c]) if c in v else np.nan for v in codes.values()] for c in coders
    ]
    expected = krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal")
    units = [list(v.values()) for v in codes.values()]
    assert agreement.krippendorff_alpha_nominal(units) == pytest.approx(expected, abs=1e-12)


def test_hand_computed_small_case():
    # Two coders, four items: agree on 3. p_o = .75; marginals a: FC 2, FR 2; b: FC 1, FR 3;
    # p_e = (2·1 + 2·3)/16 = .5, κ = (.75 − .5)/.5 = .5.
    pairs = [("full_compliance",) * 2, ("full_refusal",) * 2, ("full_refusal",) * 2]
    pairs.append(("full_compliance", "full_refusal"))
    assert agreement.cohen_kappa(pairs) == pytest.approx(0.5)
    assert agreement.accuracy(pairs) == 0.75


def test_undefined_statistics_are_none_not_numbers():
    same = [("full_refusal", "full_refusal")] * 5
    assert agreement.cohen_kappa(same) is None
    assert agreement.cohen_kappa([]) is None
    assert agreement.fleiss_kappa([["full_refusal"] * 3] * 4) is None
    assert agreement.krippendorff_alpha_nominal([["full_refusal"] * 2] * 3) is None
    assert agreement.krippendorff_alpha_nominal([["full_refusal"]]) is None
    with pytest.raises(ValueError, match="same number"):
        agreement.fleiss_kappa([["a", "b"], ["a", "b", "c"]])


def test_majority_is_none_on_a_tie():
    assert agreement.majority_label(["a", "a", "b"]) == "a"
    assert agreement.majority_label(["a", "b"]) is None
    assert agreement.majority_label(["a", "b", "c"]) is None
    assert agreement.majority_label([]) is None


def test_pooled_matrix_counts_each_pair_once_in_each_order():
    codes = {1: {"x": "a", "y": "a", "z": "b"}, 2: {"x": "b", "y": "b"}}
    matrix = agreement.pooled_coder_matrix(codes, ["a", "b"])
    # item 1: (a,a), (a,b), (a,b) → aa 2, ab 2, ba 2; item 2: (b,b) → bb 2.
    assert matrix == [[2, 2], [2, 2]]
    assert sum(map(sum, matrix)) == 2 * 4


def test_pairwise_cohen_on_common_items():
    codes = _random_codes(11, items=30, coders=3, missing=0.2)
    for pair in agreement.pairwise_cohen(codes):
        common = [v for v in codes.values() if pair.coder_a in v and pair.coder_b in v]
        pairs = [(v[pair.coder_a], v[pair.coder_b]) for v in common]
        assert pair.items == len(common)
        assert pair.kappa == pytest.approx(_statsmodels_cohen(pairs), abs=1e-12)


def test_classifier_against_the_majority_with_five_to_three_mapping():
    five_to_three = {
        "direct_refusal": "full_refusal",
        "explanation_based": "full_refusal",
        "redirection": "partial_refusal",
        "partial_compliance": "partial_refusal",
        "full_compliance": "full_compliance",
    }
    codes = {
        # Five-way a tie (1/1/1), three-way a full-refusal majority (2 of 3).
        1: {"x": "direct_refusal", "y": "explanation_based", "z": "full_compliance"},
        2: {"x": "redirection", "y": "redirection", "z": "full_compliance"},
        3: {"x": "full_compliance", "y": "partial_compliance"},  # three-way tie: left out
        4: {"x": "full_compliance", "y": "full_compliance"},  # classifier unparsed
        5: {"x": "full_compliance", "y": "full_compliance"},
        6: {"x": "full_compliance"},  # the classifier has no label for it
        7: {},
    }
    predictions = {
        1: "full_refusal",
        2: "full_refusal",
        3: "full_refusal",
        4: "unparsed",
        5: "maybe",  # outside the vocabulary: counted with the unparsed, never compared
    }
    result = agreement.classifier_agreement(
        "string_match", codes, predictions, labels=LABELS, code_map=five_to_three
    )
    assert (result.compared, result.ties, result.unparsed, result.unlabelled) == (2, 1, 2, 1)
    assert result.accuracy == 0.5
    # majority FR/classifier FR (item 1), majority PR/classifier FR (item 2).
    assert result.matrix == [[0, 0, 0], [0, 1, 0], [0, 1, 0]]
    assert result.kappa == pytest.approx(0.0)  # the classifier says full refusal throughout
