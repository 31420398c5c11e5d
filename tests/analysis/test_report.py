"""build_report: the documented shape, JSON safety, composites, and cases that must not crash."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from studies.analysis import ReportOptions, build_report, mixed
from studies.analysis.report import inputs_hash
from tests.analysis.simulate import simulate_long_format

META_KEYS = {
    "code_version",
    "inputs_hash",
    "n_ratings",
    "n_participants",
    "n_queries",
    "measures",
    "factors",
    "reference_level",
    "baseline_level",
    "inclusion",
    "timings",
    "warnings",
    "failed_parts",
    "scale_points",
}
ROW_KEYS = {
    "descriptives": {
        "measure", "grouping", "response_type", "motivation", "alignment",
        "n", "mean", "sd", "ci_low", "ci_high",
    },
    "distributions": {"measure", "value", "count", "share"},
    "mixed_models": {
        "measure", "formula", "method", "converged", "warning", "n_obs", "n_participants",
        "n_queries", "variance_components", "coefficients",
    },
    "gap_reduction": {
        "measure", "response_type", "reference_mean", "baseline_mean", "type_mean",
        "reduction", "ci_low", "ci_high", "bootstrap_reps",
        "gap", "gap_ci_low", "gap_ci_high", "n_participants",
    },
    "variance_explained": {"measure", "factor", "eta_squared"},
}  # fmt: skip
COEFFICIENT_KEYS = {
    "term", "response_type", "estimate", "se", "ci_low", "ci_high", "p", "p_holm", "stars",
}  # fmt: skip


def _quick(df: pd.DataFrame, **options) -> dict:
    report = build_report(
        df, ReportOptions(bootstrap_reps=options.pop("bootstrap_reps", 50), **options)
    )
    json.dumps(report, allow_nan=False)
    return report


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    return simulate_long_format(60, seed=4, rounded=True)


def test_report_has_exactly_the_documented_shape(likert_report):
    report = likert_report
    assert set(report) == {
        "meta", "descriptives", "distributions", "mixed_models", "gap_reduction",
        "variance_explained", "reliability", "composites",
    }  # fmt: skip
    assert set(report["meta"]) == META_KEYS
    for section, keys in ROW_KEYS.items():
        assert report[section], section
        for row in report[section]:
            assert set(row) == keys, section
    for model in report["mixed_models"]:
        assert set(model["variance_components"]) == {"participant", "query", "residual"}
        for c in model["coefficients"]:
            assert set(c) == COEFFICIENT_KEYS
    rel = report["reliability"]
    assert set(rel) == {"cronbach_alpha", "krippendorff_alpha", "attention_checks"}
    assert set(rel["cronbach_alpha"][0]) == {"construct", "items", "alpha", "n"}
    assert set(rel["krippendorff_alpha"][0]) == {"measure", "alpha", "n_units", "level"}
    assert set(rel["attention_checks"][0]) == {"check", "n", "pass_rate"}
    assert report["composites"] == [
        {
            "name": "negative",
            "items": ["frustration", "satisfaction"],
            "reverse_coded": ["satisfaction"],
        }
    ]
    json.dumps(report, allow_nan=False)


def test_meta_describes_the_run(likert_report, likert_frame):
    meta = likert_report["meta"]
    assert meta["code_version"] == "2"
    assert meta["scale_points"] == 7 and meta["failed_parts"] == []
    assert meta["n_participants"] == 480 and meta["n_queries"] == 16
    assert meta["n_ratings"] == 480 * 8 * 5  # four measures and the composite
    assert meta["measures"] == [
        "helpfulness",
        "satisfaction",
        "frustration",
        "transparency",
        "negative",
    ]
    assert meta["factors"] == ["response_type", "motivation", "alignment"]
    assert "completed" in meta["inclusion"]
    assert {"descriptives_s", "mixed_models_s", "gap_reduction_s", "total_s"} <= set(
        meta["timings"]
    )
    assert meta["inputs_hash"] == inputs_hash(likert_frame.assign())
    # The seed design's one structural note, said once rather than once per measure.
    assert sum("alignment is fully determined" in w for w in meta["warnings"]) == 1


def test_composite_is_the_reverse_coded_item_mean_per_stimulus(likert_report, likert_frame):
    ratings = likert_frame[likert_frame["kind"] == "stimulus"]
    wide = ratings.pivot_table(
        index=["participant_id", "item_position"], columns="question", values="value"
    )
    negative = (wide["frustration"] + (8 - wide["satisfaction"])) / 2
    by_type = (
        ratings.drop_duplicates(["participant_id", "item_position"])
        .set_index(["participant_id", "item_position"])["response_type"]
        .reindex(negative.index)
    )
    expected = negative.groupby(by_type.to_numpy()).mean()
    rows = [
        r for r in likert_report["descriptives"]
        if r["measure"] == "negative" and r["grouping"] == "response_type"
    ]  # fmt: skip
    assert {r["response_type"]: r["mean"] for r in rows} == pytest.approx(expected.to_dict())
    assert any(m["measure"] == "negative" for m in likert_report["mixed_models"])


def test_cronbach_uses_constructs_and_composites(likert_report):
    rows = {r["construct"]: r for r in likert_report["reliability"]["cronbach_alpha"]}
    assert set(rows) == {"affect", "negative"}
    assert rows["affect"]["n"] == 480 * 8
    # Simulated measures share only the participant and query intercepts, so the
    # consistency is moderate, not absent.
    assert 0.2 < rows["affect"]["alpha"] < 0.95


def test_inputs_hash_ignores_row_and_column_order(small):
    shuffled = small.sample(frac=1, random_state=1)[list(reversed(small.columns))]
    assert inputs_hash(small) == inputs_hash(shuffled)
    changed = small.copy()
    changed.loc[0, "value"] = 7.0 if changed.loc[0, "value"] != 7.0 else 1.0
    assert inputs_hash(changed) != inputs_hash(small)


def test_response_type_with_no_ratings(small):
    report = _quick(small[small["response_type"] != "partial_compliance"])
    assert "no ratings for partial_compliance" in report["meta"]["warnings"]
    assert not any(r["response_type"] == "partial_compliance" for r in report["gap_reduction"])
    assert all(m["coefficients"] for m in report["mixed_models"])


def test_zero_variance_measure(small):
    df = small.copy()
    df.loc[df["question"] == "transparency", "value"] = 4.0
    report = _quick(df)
    model = next(m for m in report["mixed_models"] if m["measure"] == "transparency")
    assert model["coefficients"] == []
    assert any(
        "transparency model" in w and "zero variance" in w for w in report["meta"]["warnings"]
    )
    eta = [r for r in report["variance_explained"] if r["measure"] == "transparency"]
    assert all(r["eta_squared"] is None for r in eta)
    assert all(
        r["reduction"] is None for r in report["gap_reduction"] if r["measure"] == "transparency"
    )


def test_single_participant(small):
    one = small[small["participant_id"] == "p00000"]
    report = _quick(one)
    assert report["meta"]["n_participants"] == 1
    assert any("only one participant" in w for w in report["meta"]["warnings"])
    assert all(r["n_units"] == 0 for r in report["reliability"]["krippendorff_alpha"])


def test_failed_fits_fall_back_visibly(small, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("forced failure")

    monkeypatch.setattr(mixed, "fit_crossed_reml", broken)
    report = _quick(small, measures=["helpfulness"])
    model = report["mixed_models"][0]
    assert model["method"].startswith("fallback")
    warnings = report["meta"]["warnings"]
    assert any("crossed model could not be fitted" in w for w in warnings)
    # The exception is for the operator's log, not the reader of the results.
    assert not any("forced failure" in w or "RuntimeError" in w for w in warnings)
    assert "forced failure" in caplog.text


def test_a_crashing_part_is_logged_and_named_never_shown(small, monkeypatch, caplog):
    from studies.analysis import report as report_module

    def broken(*args, **kwargs):
        raise ValueError("boom")

    monkeypatch.setattr(report_module, "krippendorff_alphas", broken)
    report = _quick(small)
    assert report["reliability"]["krippendorff_alpha"] == []
    assert report["meta"]["failed_parts"] == ["krippendorff_alpha"]
    assert not any("boom" in w or "ValueError" in w for w in report["meta"]["warnings"])
    # logger.exception: the traceback is in the log.
    logged = [r for r in caplog.records if "krippendorff_alpha" in r.getMessage()]
    assert logged and logged[0].exc_info and "boom" in caplog.text


def test_no_motivation_variation_and_no_alignment_column(small):
    df = small[small["motivation"] != "malicious"].drop(columns=["alignment"])
    report = _quick(df)
    assert report["meta"]["factors"] == ["response_type", "motivation"]
    model = report["mixed_models"][0]
    assert "motivation has one level (benign)" in model["warning"]
    assert not any("motivation[" in c["term"] for c in model["coefficients"])


def test_reference_and_baseline_absent(small):
    report = _quick(small, reference_level="nonexistent", baseline_level="also_missing")
    warnings = report["meta"]["warnings"]
    assert "no ratings for nonexistent" in warnings and "no ratings for also_missing" in warnings
    assert report["gap_reduction"] and all(r["reduction"] is None for r in report["gap_reduction"])
    assert all(m["coefficients"] for m in report["mixed_models"])


def test_inclusion_drops_other_statuses(small):
    df = small.copy()
    df.loc[df["participant_id"] == "p00001", "participant_status"] = "returned"
    assert _quick(df)["meta"]["n_participants"] == 59
    everyone = _quick(df, inclusion=None)
    assert everyone["meta"]["n_participants"] == 60
    assert "all participants" in everyone["meta"]["inclusion"]


def test_attention_rates_count_everyone_who_answered(small):
    report = _quick(small)
    overall = report["reliability"]["attention_checks"][-1]
    assert overall["check"] == "all" and overall["n"] == 60 * 2


def test_requested_measure_without_ratings_is_a_warning(small):
    report = _quick(small, measures=["helpfulness", "never_asked"])
    assert report["meta"]["measures"] == ["helpfulness"]
    assert "no ratings for measure never_asked" in report["meta"]["warnings"]


def test_no_ratings_at_all():
    empty = simulate_long_format(4, seed=0).iloc[0:0]
    report = _quick(empty)
    assert report["meta"]["n_ratings"] == 0 and report["mixed_models"] == []


def test_everything_is_finite_or_none_even_with_extreme_values(small):
    df = small.copy()
    df.loc[df["question"] == "helpfulness", "value"] = np.where(
        df.loc[df["question"] == "helpfulness", "response_type"] == "full_compliance", 7.0, 1.0
    )
    report = _quick(df)
    json.dumps(report, allow_nan=False)
    model = next(m for m in report["mixed_models"] if m["measure"] == "helpfulness")
    assert model["method"]


def test_one_measure_crashing_keeps_the_other_models(small, monkeypatch):
    from studies.analysis import report as report_module

    real = report_module.fit_mixed_model

    def flaky(df, *args, **kwargs):
        if df["question"].iloc[0] == "helpfulness":
            raise KeyError("bug")
        return real(df, *args, **kwargs)

    monkeypatch.setattr(report_module, "fit_mixed_model", flaky)
    report = _quick(small)
    by_measure = {m["measure"]: m for m in report["mixed_models"]}
    assert by_measure["helpfulness"]["method"] == "not fitted"
    assert by_measure["frustration"]["coefficients"]
    assert report["meta"]["failed_parts"] == ["mixed_models:helpfulness"]
    assert not any("KeyError" in w for w in report["meta"]["warnings"])


def test_inputs_hash_is_the_same_whatever_dtype_a_column_arrived_in(small):
    """A frame from the database and the same rows read back from a CSV name the same input."""
    from_file = small.astype({"item_position": float, "ms_on_page": float, "kind": "string"})
    from_file["topic"] = np.nan  # a missing label read from a file: NaN, not None
    assert inputs_hash(from_file) == inputs_hash(small)
    relabelled = small.copy()
    relabelled.loc[3, "participant_id"] = "someone-else"
    assert inputs_hash(relabelled) != inputs_hash(small)
    missing = small.copy()
    missing.loc[3, "category"] = None
    assert inputs_hash(missing) != inputs_hash(small)
