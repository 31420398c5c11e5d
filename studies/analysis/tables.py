"""Every table of the analysis report as flat rows, for the results page, CSVs and exports."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from typing import Any

from studies.domain import RESPONSE_TYPE_LABELS

# Table slugs in display order. They appear in download URLs (`table/<slug>.csv`), so they
# must never change meaning; add new ones rather than renaming.
TABLE_SLUGS: tuple[str, ...] = (
    "descriptives",
    "coefficients",
    "models",
    "variance_components",
    "gap_reduction",
    "variance_explained",
    "distributions",
    "cronbach_alpha",
    "krippendorff_alpha",
    "attention_checks",
    "composites",
)

# Preferred leading columns per table; any further keys the report carries (a study with an
# extra factor, a newer report version) follow in order of first appearance, so nothing the
# analysis produced is silently dropped from a CSV.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "descriptives": (
        "measure",
        "grouping",
        "response_type",
        "motivation",
        "alignment",
        "n",
        "mean",
        "sd",
        "ci_low",
        "ci_high",
    ),
    "coefficients": (
        "measure",
        "term",
        "response_type",
        "estimate",
        "se",
        "ci_low",
        "ci_high",
        "p",
        "p_holm",
        "stars",
    ),
    "models": (
        "measure",
        "formula",
        "method",
        "converged",
        "warning",
        "n_obs",
        "n_participants",
        "n_queries",
    ),
    "variance_components": ("measure", "participant", "query", "residual"),
    "gap_reduction": (
        "measure",
        "response_type",
        "reference_mean",
        "baseline_mean",
        "type_mean",
        "reduction",
        "ci_low",
        "ci_high",
        "bootstrap_reps",
    ),
    "variance_explained": ("measure", "factor", "eta_squared"),
    "distributions": ("measure", "value", "count", "share"),
    "cronbach_alpha": ("construct", "items", "alpha", "n"),
    "krippendorff_alpha": ("measure", "alpha", "n_units", "level"),
    "attention_checks": ("check", "n", "pass_rate"),
    "composites": ("name", "items", "reverse_coded"),
}

TABLE_TITLES: dict[str, str] = {
    "descriptives": "Means with 95% confidence intervals",
    "coefficients": "Mixed-model coefficients",
    "models": "Mixed models fitted",
    "variance_components": "Variance components of the mixed models",
    "gap_reduction": "Reduction of the perception gap",
    "variance_explained": "Share of variance explained by each factor (η²)",
    "distributions": "Distribution of ratings",
    "cronbach_alpha": "Internal consistency (Cronbach's α)",
    "krippendorff_alpha": "Inter-rater agreement (Krippendorff's α)",
    "attention_checks": "Attention checks",
    "composites": "Composite measures",
}

TABLE_DESCRIPTIONS: dict[str, str] = {
    "descriptives": "One row per measure and group; 95% CIs of the mean.",
    "coefficients": "Fixed effects per measure; p (Holm) is corrected across the model's terms.",
    "models": "Formula, estimation method and convergence of each measure's model.",
    "variance_components": "Random-intercept variances for participants and queries.",
    "gap_reduction": (
        "Share of the gap between the baseline refusal and the reference response that a "
        "response type closes: 1 − (reference − type) / (reference − baseline); bootstrap CIs."
    ),
    "variance_explained": "Eta squared computed from group means.",
    "distributions": "How often each scale point was chosen.",
    "cronbach_alpha": "Per construct, over the items that make it up.",
    "krippendorff_alpha": "For items rated by several participants.",
    "attention_checks": "Share of participants answering each check correctly.",
    "composites": "Measures averaged from several items; reverse-coded items flipped first.",
}

COLUMN_LABELS: dict[str, str] = {
    "n": "n",
    "sd": "SD",
    "se": "SE",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "p": "p",
    "p_holm": "p (Holm)",
    "eta_squared": "η²",
    "n_obs": "Observations",
    "n_units": "Units",
    "n_participants": "Participants",
    "n_queries": "Queries",
    "pass_rate": "Pass rate",
    "bootstrap_reps": "Bootstrap reps",
    "reverse_coded": "Reverse-coded",
    "alpha": "α",
}

# Columns holding response-type codes, shown with their human label on the page (CSV keeps
# the codes, which is what a notebook joins on).
_RESPONSE_TYPE_COLUMNS = frozenset({"response_type"})
_P_COLUMNS = frozenset({"p", "p_holm"})


def _clean(value: Any) -> Any:
    """One cell as a CSV/HTML-friendly scalar: lists joined, NaN treated as missing."""
    if isinstance(value, float) and not math.isfinite(value):
        # The format forbids NaN, but a slip upstream must not put "nan" in a published table.
        return None
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return value


def _normalise(rows: Iterable[dict[str, Any]], preferred: Sequence[str]) -> list[dict[str, Any]]:
    """Rows with the same keys in the same order, so a template can read headers off row 0."""
    rows = list(rows)
    columns = list(preferred)
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return [{c: _clean(row.get(c)) for c in columns} for row in rows]


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def report_tables(report: dict) -> dict[str, list[dict[str, Any]]]:
    """Every table of the report keyed by a stable slug (all of TABLE_SLUGS, possibly empty).

    Values stay raw (codes, full-precision floats, None) so CSVs are exact; use
    `display_tables` for the page.
    """
    report = report or {}
    models = [m for m in _list(report.get("mixed_models")) if isinstance(m, dict)]
    reliability = report.get("reliability") or {}

    coefficients = [
        {"measure": model.get("measure"), **coef}
        for model in models
        for coef in _list(model.get("coefficients"))
    ]
    model_rows = [
        {k: v for k, v in model.items() if k not in ("coefficients", "variance_components")}
        for model in models
    ]
    variance_components = [
        {"measure": model.get("measure"), **(model.get("variance_components") or {})}
        for model in models
    ]
    raw: dict[str, list[dict[str, Any]]] = {
        "descriptives": _list(report.get("descriptives")),
        "coefficients": coefficients,
        "models": model_rows,
        "variance_components": variance_components,
        "gap_reduction": _list(report.get("gap_reduction")),
        "variance_explained": _list(report.get("variance_explained")),
        "distributions": _list(report.get("distributions")),
        "cronbach_alpha": _list(reliability.get("cronbach_alpha")),
        "krippendorff_alpha": _list(reliability.get("krippendorff_alpha")),
        "attention_checks": _list(reliability.get("attention_checks")),
        "composites": _list(report.get("composites")),
    }
    return {slug: _normalise(raw[slug], TABLE_COLUMNS[slug]) for slug in TABLE_SLUGS}


def table_csv(rows: list[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows as CSV text: header from `columns` (or the rows' keys in first-seen order), None → ''.

    Pass `columns=TABLE_COLUMNS[slug]` to get a header even for an empty table.
    """
    fieldnames = list(columns or [])
    for row in rows:
        for key in row:
            if key not in fieldnames:
                fieldnames.append(key)
    buffer = io.StringIO()
    if not fieldnames:
        return ""
    # lineterminator "\n": the file is downloaded and diffed far more often than opened in
    # tools that insist on CRLF, and csv.reader accepts both.
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cleaned = {k: _clean(v) for k, v in row.items()}
        writer.writerow({k: "" if cleaned.get(k) is None else cleaned[k] for k in fieldnames})
    return buffer.getvalue()


def column_label(column: str) -> str:
    """A readable header for a column key ("ci_low" → "95% CI low")."""
    return COLUMN_LABELS.get(column, column.replace("_", " ").capitalize())


def format_cell(column: str, value: Any) -> str:
    """One cell as text for the page: 3 decimals, p-values floored at <0.001, labels for codes."""
    value = _clean(value)
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column in _RESPONSE_TYPE_COLUMNS and isinstance(value, str):
        return RESPONSE_TYPE_LABELS.get(value, value)
    if isinstance(value, float):
        if column in _P_COLUMNS and value < 0.001:
            return "<0.001"
        return f"{value:.3f}"
    return str(value)


def display_tables(report: dict) -> dict[str, dict[str, Any]]:
    """Tables ready for a template: slug → {slug, title, description, columns, rows}.

    `columns` is a list of {"key", "label", "numeric"}; `rows` a list of rows, each a list of
    {"text", "numeric"} cells in column order (numeric cells are right-aligned). Django
    templates can neither index a dict by a variable key nor zip two lists, so everything a
    table needs travels inside it.
    """
    out: dict[str, dict[str, Any]] = {}
    for slug, rows in report_tables(report).items():
        keys = list(rows[0]) if rows else list(TABLE_COLUMNS[slug])
        columns = []
        for key in keys:
            present = [r[key] for r in rows if r[key] is not None]
            numeric = bool(present) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in present
            )
            columns.append({"key": key, "label": column_label(key), "numeric": numeric})
        out[slug] = {
            "slug": slug,
            "title": TABLE_TITLES[slug],
            "description": TABLE_DESCRIPTIONS[slug],
            "columns": columns,
            "rows": [
                [
                    {"text": format_cell(c["key"], r[c["key"]]), "numeric": c["numeric"]}
                    for c in columns
                ]
                for r in rows
            ],
        }
    return out
