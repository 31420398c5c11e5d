"""build_report: every statistic of a study's ratings as one JSON-serialisable dict."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from studies.analysis.common import measure_order, ordered_levels
from studies.analysis.composites import add_composites, normalise_composites
from studies.analysis.descriptives import describe, distributions, eta_squared
from studies.analysis.frame import (
    AnalysisInputError,
    apply_inclusion,
    inclusion_rule,
    split_kinds,
    validate_long_format,
)
from studies.analysis.gaps import gap_reductions
from studies.analysis.mixed import ALIGNMENT_CONFOUNDED, fit_mixed_model, model_not_fitted
from studies.analysis.reliability import (
    attention_pass_rates,
    cronbach_alphas,
    krippendorff_alphas,
)
from studies.domain import RESPONSE_TYPES

# 2: gap rows carry the reference gap's CI and participants; meta has failed_parts, scale_points.
CODE_VERSION = "2"
T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class ReportOptions:
    """What to analyse and how; the defaults reproduce the seed study's analysis."""

    reference_level: str = "full_compliance"
    baseline_level: str = "direct_refusal"
    measures: list[str] | None = None
    composites: dict[str, dict] | None = None
    constructs: dict[str, list[str]] | None = None
    reverse_coded: list[str] | tuple[str, ...] = field(default_factory=tuple)
    points: int = 7
    # An inclusion rule's name (studies.domain.INCLUSION_RULES), or a list of statuses.
    inclusion: str | tuple[str, ...] | None = "included"
    bootstrap_reps: int = 1000
    seed: int = 0


def _column_hashes(series: pd.Series) -> np.ndarray:
    """64-bit hashes of one column's cells, alike whatever dtype the column arrived in:
    numbers (and booleans) as float64 with one NaN and one zero, times as UTC nanoseconds,
    the rest as text with every kind of missing the same."""
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
        if missing.all():
            # A column with nothing in it: float NaN from a file, None from the database.
            return pd.util.hash_array(np.full(len(values), None, dtype=object), categorize=True)
        # + 0.0 turns -0.0 into 0.0; NaN payloads differ, np.nan is one bit pattern.
        values = np.where(missing, np.nan, values + 0.0)
    elif isinstance(series.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(series):
        values = series.to_numpy(dtype="datetime64[ns]").view(np.int64)
    else:
        # categorize=True hashes each distinct value once and gives every missing value
        # (None, NaN, pd.NA) the same hash, so no conversion of the cells is needed.
        values = series.to_numpy(dtype=object)
    return pd.util.hash_array(values, categorize=True)


# Mixes one column's hashes into a row's (FNV-1a's 64-bit prime; wrapping multiplication).
_MIX = np.uint64(0x100000001B3)


def inputs_hash(df: pd.DataFrame) -> str:
    """sha256 that names the input rows, whatever their order (rows and columns).

    Each row is hashed to 64 bits (pandas' hash_array of each cell, columns mixed in sorted
    order, each column in a canonical dtype: see _column_hashes); the row hashes are sorted
    and the sha256 is taken of the sorted column names followed by the sorted row hashes.
    Sorting makes it independent of row order; two inputs that differ in any cell differ in
    the hash, except with the chance of a 64-bit collision between rows. It was the sorted
    CSV text of every row: 7 s of a 22 s analysis of a million ratings.
    """
    columns = sorted(map(str, df.columns))
    rows = np.zeros(len(df), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in columns:
            rows = (rows * _MIX) ^ _column_hashes(df[column])
    digest = hashlib.sha256(("\x1f".join(columns) + "\n").encode("utf-8"))
    digest.update(np.sort(rows).astype("<u8").tobytes())
    return digest.hexdigest()


def json_safe(value: Any) -> Any:
    """Plain Python data with NaN/inf as None and numpy scalars unwrapped."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


class _Run:
    """Times each part; a part that crashes is logged with its traceback and named in
    ``failed_parts`` (the pages say it could not be computed), never shown as a finding or a
    data warning: an exception's text is for the operator's log, not the reader of results."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.warnings: list[str] = []
        self.failed_parts: list[str] = []

    def failed(self, name: str) -> None:
        logger.exception("analysis part %s failed", name)
        if name not in self.failed_parts:
            self.failed_parts.append(name)

    def part(self, name: str, fn: Callable[[], T], empty: T) -> T:
        start = time.perf_counter()
        try:
            return fn()
        except AnalysisInputError:
            raise
        except Exception:  # noqa: BLE001 - one broken part must not hide the others
            self.failed(name)
            return empty
        finally:
            self.timings[f"{name}_s"] = round(time.perf_counter() - start, 4)


def _with_notes(run: _Run, result: tuple[T, list[str]]) -> T:
    rows, notes = result
    run.warnings += notes
    return rows


def build_report(df: pd.DataFrame, options: ReportOptions | None = None) -> dict:
    """Analyse long-format ratings (attention rows may be included) into REPORT_FORMAT's shape.

    Bad input (missing columns, non-numeric values, a malformed composite) raises
    AnalysisInputError; everything else that goes wrong, including a requested measure
    without ratings, becomes a line in meta.warnings.
    """
    options = options or ReportOptions()
    run = _Run()
    total_start = time.perf_counter()

    start = time.perf_counter()
    full = validate_long_format(df)
    all_ratings, attention = split_kinds(full)
    ratings = apply_inclusion(all_ratings, options.inclusion)
    inclusion = inclusion_rule(all_ratings, options.inclusion)
    composites = normalise_composites(options.composites, options.reverse_coded, options.points)
    if options.measures is not None:
        # A spec's question nobody has answered yet is reported, not fatal: the platform
        # asks for every question of the spec, ratings or not.
        measures = list(dict.fromkeys(options.measures))
    else:
        measures = measure_order(ratings["question"])
    run.timings["prepare_s"] = round(time.perf_counter() - start, 4)
    start = time.perf_counter()
    digest = inputs_hash(full)
    run.timings["inputs_hash_s"] = round(time.perf_counter() - start, 4)

    if ratings.empty:
        run.warnings.append("no ratings left after inclusion: " + inclusion)

    def _composites() -> pd.DataFrame:
        frame, notes = add_composites(ratings, composites)
        run.warnings.extend(notes)
        return frame

    ratings = run.part("composites", _composites, ratings)
    made = [name for name in composites if name in set(ratings["question"].unique())]
    measures = measures + [name for name in made if name not in measures]
    answered = set(ratings["question"].unique())
    for m in measures:
        if m not in answered:
            run.warnings.append(f"no ratings for measure {m}")
    measures = [m for m in measures if m in answered]
    data = _analysis_frame(ratings, measures)

    factors = ["response_type"] + [
        f for f in ("motivation", "alignment") if f in data.columns and data[f].notna().any()
    ]
    _type_warnings(run, data, measures, options)

    descriptives = run.part("descriptives", lambda: describe(data, measures, factors), [])
    dists = run.part("distributions", lambda: distributions(data, measures), [])

    def _models() -> list[dict]:
        out = []
        for m in measures:
            subset = data[data["question"] == m]
            try:
                fit = fit_mixed_model(subset, options.reference_level, factors)
            except Exception:  # noqa: BLE001 - one measure's bug must not lose the rest
                run.failed(f"mixed_models:{m}")
                fit = model_not_fitted(m, "this model could not be computed", subset)
            text = fit["warning"] or ""
            if ALIGNMENT_CONFOUNDED in text:
                # A property of the design, the same for every measure: say it once.
                run.warnings.append(ALIGNMENT_CONFOUNDED)
                text = text.replace(ALIGNMENT_CONFOUNDED, "").strip("; ").replace("; ; ", "; ")
            if text:
                run.warnings.append(f"{m} model: {text}")
            out.append(fit)
        return out

    models = run.part("mixed_models", _models, [])
    gaps = run.part(
        "gap_reduction",
        lambda: _with_notes(
            run,
            gap_reductions(
                data,
                measures,
                options.reference_level,
                options.baseline_level,
                options.bootstrap_reps,
                options.seed,
            ),
        ),
        [],
    )
    variance = run.part("variance_explained", lambda: eta_squared(data, measures, factors), [])

    def _cronbach() -> list[dict]:
        rows, notes = cronbach_alphas(
            ratings, options.constructs or {}, options.reverse_coded, options.points
        )
        # A composite is a scale in its own right; its items' consistency is reported with
        # its own reverse coding (which may differ from the study-wide list).
        for name, spec in composites.items():
            if name not in (options.constructs or {}):
                more, more_notes = cronbach_alphas(
                    ratings, {name: spec["items"]}, spec["reverse_coded"], spec["points"]
                )
                rows += more
                notes += more_notes
        run.warnings.extend(notes)
        return rows

    cronbach_rows = run.part("cronbach_alpha", _cronbach, [])
    kripp_rows = run.part(
        "krippendorff_alpha", lambda: _with_notes(run, krippendorff_alphas(data, measures)), []
    )
    attention_rows = run.part("attention_checks", lambda: attention_pass_rates(attention), [])
    run.timings["total_s"] = round(time.perf_counter() - total_start, 4)

    report = {
        "meta": {
            "code_version": CODE_VERSION,
            "inputs_hash": digest,
            "n_ratings": int(len(data)),
            "n_participants": int(data["participant_id"].nunique()),
            "n_queries": int(data["query_id"].nunique()),
            "measures": measures,
            "factors": factors,
            "reference_level": options.reference_level,
            "baseline_level": options.baseline_level,
            "inclusion": inclusion,
            "timings": run.timings,
            "warnings": list(dict.fromkeys(run.warnings)),
            "failed_parts": run.failed_parts,
            "scale_points": int(options.points),
        },
        "descriptives": descriptives,
        "distributions": dists,
        "mixed_models": models,
        "gap_reduction": gaps,
        "variance_explained": variance,
        "reliability": {
            "cronbach_alpha": cronbach_rows,
            "krippendorff_alpha": kripp_rows,
            "attention_checks": attention_rows,
        },
        "composites": [
            {"name": name, "items": spec["items"], "reverse_coded": spec["reverse_coded"]}
            for name, spec in composites.items()
            if name in made
        ],
    }
    return json_safe(report)


# The columns the statistics read; label columns among them become categoricals.
_ANALYSED_LABELS = ("question", "participant_id", "query_id", "response_type")
_FACTOR_LABELS = ("motivation", "alignment")


def _analysis_frame(ratings: pd.DataFrame, measures: list[str]) -> pd.DataFrame:
    """The rows of the analysed measures, only the columns the statistics read, labels as
    categoricals: every part filters by measure and groups by level, which on a million
    ratings meant comparing and hashing text cells (and copying every column) dozens of times.
    """
    columns = [c for c in (*_ANALYSED_LABELS, *_FACTOR_LABELS) if c in ratings.columns]
    data = ratings.loc[ratings["question"].isin(measures), [*columns, "value"]]
    return data.astype({c: "category" for c in columns}).reset_index(drop=True)


def _type_warnings(
    run: _Run, data: pd.DataFrame, measures: list[str], options: ReportOptions
) -> None:
    """Warn about response types, reference or baseline with no ratings (overall or per measure)."""
    present = ordered_levels("response_type", data["response_type"])
    expected = [t for t in RESPONSE_TYPES if t not in present]
    for level in (options.reference_level, options.baseline_level):
        if level not in present and level not in expected:
            expected.append(level)
    for t in expected:
        run.warnings.append(f"no ratings for {t}")
    by_measure = data.groupby("question", observed=True)["response_type"].unique()
    for m in measures:
        have = set(by_measure.get(m, []))
        missing = [t for t in present if t not in have]
        if missing and have:
            run.warnings.append(f"{m}: no ratings for {', '.join(missing)}")
        if not have:
            run.warnings.append(f"{m}: no ratings")
