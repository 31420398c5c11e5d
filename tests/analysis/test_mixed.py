"""The mixed model: agreement with statsmodels, coverage of the truth, rounding, fallbacks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.linear_model import OLS
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.stats.multitest import multipletests

from studies.analysis import mixed
from studies.analysis.mixed import (
    ALIGNMENT_CONFOUNDED,
    METHOD_CROSSED,
    METHOD_OLS,
    METHOD_PARTICIPANT,
    fit_mixed_model,
)
from tests.analysis.simulate import DEFAULT_EFFECTS, simulate_long_format

FACTORS = ["response_type", "motivation", "alignment"]
HELPFULNESS = {"helpfulness": DEFAULT_EFFECTS["helpfulness"]}


def _ratings(n: int, seed: int, effects=None, **kwargs) -> pd.DataFrame:
    df = simulate_long_format(n, seed=seed, effects=effects or HELPFULNESS, **kwargs)
    return df[df["kind"] == "stimulus"].reset_index(drop=True)


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return _ratings(120, seed=5)


@pytest.mark.parametrize("balanced", [True, False], ids=["balanced", "unbalanced"])
def test_same_fit_as_statsmodels_crossed_mixedlm(small, balanced):
    """The sparse REML fit equals statsmodels' one-group, two-variance-component MixedLM.

    statsmodels needs ~2 s here and grows quadratically with participants (11-19 s at 480,
    out of memory at 12,500), which is why the report uses the direct fit. Unbalanced:
    a random 30% of ratings dropped, so participants have different numbers of ratings.
    """
    if not balanced:
        small = small.sample(frac=0.7, random_state=0).sort_index()
    data = small.assign(one=1)
    reference = MixedLM.from_formula(
        "value ~ C(response_type, Treatment('full_compliance')) * motivation",
        data=data,
        groups="one",
        re_formula="0",
        vc_formula={"participant": "0 + C(participant_id)", "query": "0 + C(query_id)"},
        use_sparse=True,
    ).fit(reml=True)
    ours = fit_mixed_model(small, "full_compliance", FACTORS)
    assert ours["method"] == METHOD_CROSSED and ours["converged"]

    def readable(name: str) -> str:
        name = name.replace("C(response_type, Treatment('full_compliance'))[T.", "response_type[")
        return name.replace("motivation[T.", "motivation[")

    theirs = {readable(k): v for k, v in reference.fe_params.items()}
    their_se = {readable(k): v for k, v in reference.bse_fe.items()}
    assert {c["term"] for c in ours["coefficients"]} == set(theirs)
    for c in ours["coefficients"]:
        assert c["estimate"] == pytest.approx(theirs[c["term"]], abs=1e-3)
        assert c["se"] == pytest.approx(their_se[c["term"]], rel=0.01)
    vc = ours["variance_components"]
    assert vc["participant"] == pytest.approx(reference.vcomp[0], rel=0.01)
    assert vc["query"] == pytest.approx(reference.vcomp[1], rel=0.02)
    assert vc["residual"] == pytest.approx(reference.scale, rel=0.001)


def test_output_names_terms_readably_and_adjusts_the_response_type_family(small):
    out = fit_mixed_model(small, "full_compliance", FACTORS)
    terms = [c["term"] for c in out["coefficients"]]
    assert terms[:6] == [
        "Intercept",
        "response_type[direct_refusal]",
        "response_type[explanation_based]",
        "response_type[redirection]",
        "response_type[partial_compliance]",
        "motivation[malicious]",
    ]
    assert "response_type[partial_compliance]:motivation[malicious]" in terms
    # In the seed design alignment is a function of type x motivation: not estimable.
    assert not any(t.startswith("alignment") for t in terms)
    assert ALIGNMENT_CONFOUNDED in out["warning"]
    assert "alignment" not in out["formula"]
    assert out["formula"] == (
        "value ~ C(response_type, Treatment('full_compliance')) * motivation"
        " + (1|participant_id) + (1|query_id)"
    )
    family = [c for c in out["coefficients"] if c["response_type"]]
    assert len(family) == 8
    expected = multipletests([c["p"] for c in family], method="holm")[1]
    assert [c["p_holm"] for c in family] == pytest.approx(list(expected))
    for c in out["coefficients"]:
        p = c["p_holm"]
        want = (
            ""
            if p is None
            else "***"
            if p < 0.001
            else "**"
            if p < 0.01
            else "*"
            if p < 0.05
            else ""
        )
        assert c["stars"] == want
        assert c["ci_low"] < c["estimate"] < c["ci_high"]
    motivation = next(c for c in out["coefficients"] if c["term"] == "motivation[malicious]")
    assert motivation["p_holm"] == motivation["p"] and motivation["response_type"] is None
    assert out["n_obs"] == len(small) and out["n_participants"] == 120 and out["n_queries"] == 16


def test_alignment_gets_a_term_when_it_varies_on_its_own():
    rng = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame(
        {
            "participant_id": rng.integers(0, 100, n).astype(str),
            "query_id": rng.integers(0, 16, n).astype(str),
            "response_type": rng.choice(["full_compliance", "direct_refusal"], n),
            "motivation": rng.choice(["benign", "malicious"], n),
            "alignment": rng.choice(["aligned", "misaligned"], n),
            "question": "h",
        }
    )
    df["value"] = 4 + 0.7 * (df["alignment"] == "misaligned") + rng.normal(0, 1, n)
    out = fit_mixed_model(df, "full_compliance", FACTORS)
    term = next(c for c in out["coefficients"] if c["term"] == "alignment[misaligned]")
    assert term["ci_low"] < 0.7 < term["ci_high"]
    assert out["formula"].startswith(
        "value ~ C(response_type, Treatment('full_compliance')) * motivation + alignment"
    )


def test_fixed_effect_cis_cover_the_truth_about_95_percent():
    """Coverage over 40 seeds x 480 participants (the paper's size), continuous values.

    Eight response-type terms per fit (4 main effects, 4 interactions whose truth is 0):
    320 intervals; a correct 95% interval misses ~16 of them (binomial SD ~4).
    """
    truth = DEFAULT_EFFECTS["helpfulness"]["response_type"]
    hits = []
    for seed in range(40):
        out = fit_mixed_model(_ratings(480, seed=100 + seed), "full_compliance", FACTORS)
        assert out["method"] == METHOD_CROSSED
        for c in out["coefficients"]:
            if c["response_type"] is None:
                continue
            true = 0.0 if ":" in c["term"] else truth[c["response_type"]]
            hits.append(c["ci_low"] <= true <= c["ci_high"])
    coverage = float(np.mean(hits))
    print(f"coverage of 95% CIs: {coverage:.3f} over {len(hits)} intervals")
    assert len(hits) == 320
    assert 0.88 <= coverage <= 0.99


def test_rounded_clipped_likert_values_stay_close_to_the_truth():
    """Rounding to integers and clipping to 1..7 attenuates effects only slightly.

    Measured (20 seeds x 480 participants, intercept 4, effects -1..+1, participant SD 0.8,
    query SD 0.3, residual SD 1): estimates / truth regress with slope 0.96, i.e. ~4%
    attenuation, largest mean bias 0.04 scale points. The helpfulness profile (intercept 5,
    effects down to -2, so more clipping at 7) gave slope 0.95 and largest bias 0.07.
    """
    effects = {
        "m": {
            "intercept": 4.0,
            "response_type": {
                "direct_refusal": -1.0,
                "explanation_based": -0.6,
                "redirection": 0.4,
                "partial_compliance": 1.0,
            },
            "motivation": {"malicious": -0.3},
        }
    }
    truth = effects["m"]["response_type"]
    estimates: dict[str, list[float]] = {t: [] for t in truth}
    for seed in range(20):
        out = fit_mixed_model(
            _ratings(480, seed=200 + seed, effects=effects, rounded=True),
            "full_compliance",
            FACTORS,
        )
        for c in out["coefficients"]:
            if c["response_type"] and ":" not in c["term"]:
                estimates[c["response_type"]].append(c["estimate"])
    true = np.array([truth[t] for t in truth])
    mean = np.array([np.mean(estimates[t]) for t in truth])
    slope = float(np.polyfit(true, mean, 1)[0])
    bias = dict(zip(truth, np.round(mean - true, 3), strict=True))
    print(f"attenuation slope {slope:.3f}; bias {bias}")
    assert np.abs(mean - true).max() < 0.15
    assert 0.85 < slope <= 1.02


def test_zero_variance_measure_is_not_fitted(small):
    out = fit_mixed_model(small.assign(value=4.0), "full_compliance", FACTORS)
    assert out["coefficients"] == [] and not out["converged"]
    assert "zero variance" in out["warning"]


def test_missing_reference_level_uses_another_with_a_warning(small):
    data = small[small["response_type"] != "full_compliance"]
    out = fit_mixed_model(data, "full_compliance", FACTORS)
    assert "reference level full_compliance has no ratings" in out["warning"]
    assert "Treatment('direct_refusal')" in out["formula"]


def test_one_motivation_level_drops_motivation(small):
    out = fit_mixed_model(small[small["motivation"] == "benign"], "full_compliance", FACTORS)
    assert "motivation has one level (benign)" in out["warning"]
    assert not any("motivation" in c["term"] for c in out["coefficients"])


def test_single_participant_fits_without_a_participant_intercept(small):
    one = small[small["participant_id"] == small["participant_id"].iloc[0]]
    out = fit_mixed_model(one, "full_compliance", FACTORS)
    assert "only one participant" in out["warning"]
    assert out["n_participants"] == 1


def test_crossed_failure_falls_back_to_participant_intercept(small, monkeypatch):
    def broken(*args, **kwargs):
        raise np.linalg.LinAlgError("forced")

    monkeypatch.setattr(mixed, "fit_crossed_reml", broken)
    out = fit_mixed_model(small, "full_compliance", FACTORS)
    assert out["method"] == METHOD_PARTICIPANT
    assert "crossed model could not be fitted" in out["warning"]
    assert "used fallback" in out["warning"]
    assert "forced" not in out["warning"]  # the exception is logged, not shown
    assert out["variance_components"]["query"] is None
    assert out["formula"].endswith("+ (1|participant_id)")
    assert len(out["coefficients"]) == 10


def test_nan_results_fall_back_too(small, monkeypatch):
    real = mixed.fit_crossed_reml

    def nan_fit(*args, **kwargs):
        fit = real(*args, **kwargs)
        fit.cov_fe = fit.cov_fe * np.nan
        return fit

    monkeypatch.setattr(mixed, "fit_crossed_reml", nan_fit)
    assert fit_mixed_model(small, "full_compliance", FACTORS)["method"] == METHOD_PARTICIPANT


def test_both_mixed_models_failing_gives_cluster_robust_ols(small, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("forced")

    monkeypatch.setattr(mixed, "fit_crossed_reml", broken)
    monkeypatch.setattr(MixedLM, "fit", broken)
    out = fit_mixed_model(small, "full_compliance", FACTORS)
    assert out["method"] == METHOD_OLS
    assert out["converged"] and out["coefficients"]
    assert out["variance_components"]["participant"] is None
    assert "(1|" not in out["formula"]


def test_everything_failing_still_returns_a_record(small, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("forced")

    monkeypatch.setattr(mixed, "fit_crossed_reml", broken)
    monkeypatch.setattr(MixedLM, "fit", broken)
    monkeypatch.setattr(OLS, "fit", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fit_mixed_model(small, "full_compliance", FACTORS)
    assert out["coefficients"] == [] and out["method"] == "not fitted"
    assert out["warning"].count("could not be fitted") == 3
    assert "forced" not in out["warning"]
