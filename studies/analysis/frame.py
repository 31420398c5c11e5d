"""Read, validate and filter ratings in the platform's long format (one row per rating)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from studies.domain import INCLUSION_RULES, LONG_FORMAT_COLUMNS, LONG_FORMAT_REQUIRED

REQUIRED_COLUMNS: tuple[str, ...] = LONG_FORMAT_REQUIRED
# The export's other fixed columns, and the seed design's alignment factor.
OPTIONAL_COLUMNS: tuple[str, ...] = (
    "alignment",
    *(c for c in LONG_FORMAT_COLUMNS if c not in LONG_FORMAT_REQUIRED),
)
# Any further column is carried along as an extra factor (e.g. refusal_strategy).
LONG_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS

# Columns that identify a rating; a stimulus row lacking one cannot be analysed.
_KEY_COLUMNS: tuple[str, ...] = ("participant_id", "query_id", "response_type", "question")
# Label columns, compared as text whatever dtype the caller's frame had.
_TEXT_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "query_id",
    "category",
    "motivation",
    "response_type",
    "question",
    "alignment",
    "topic",
    "participant_status",
    "kind",
)
# Error messages list this many offending rows, then a count, so a broken file stays readable.
_MAX_ROWS_LISTED = 10


class AnalysisInputError(ValueError):
    """The ratings cannot be analysed as given; the message says what to fix."""


def _row_labels(frame: pd.DataFrame, mask: np.ndarray, from_file: bool) -> str:
    """Name the rows where ``mask`` is true: CSV line numbers for files, index labels otherwise."""
    positions = np.flatnonzero(mask)
    if from_file:
        # Line 1 is the header, so data row i (0-based) sits on line i + 2.
        shown = [f"line {p + 2}" for p in positions[:_MAX_ROWS_LISTED]]
    else:
        shown = [f"row {frame.index[p]!r}" for p in positions[:_MAX_ROWS_LISTED]]
    more = len(positions) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _as_text(series: pd.Series) -> pd.Series:
    """Stripped strings as Python objects, None where blank, so ids compare as labels.

    Each distinct value is converted once and the result spread back by its codes: a
    million cells hold a few thousand distinct ids and levels.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = pd.Series(np.asarray(uniques, dtype=object)).astype("string").str.strip()
    keep = (labels.notna() & (labels != "")).fillna(False).to_numpy(dtype=bool)
    table = np.append(labels.astype(object).to_numpy(), None)
    table[:-1][~keep] = None
    # Code -1 (missing) picks the trailing None.
    return pd.Series(table[codes], index=series.index, dtype=object)


def validate_long_format(
    frame: pd.DataFrame,
    column_map: Mapping[str, str] | None = None,
    from_file: bool = False,
) -> pd.DataFrame:
    """Rename, check and type every row (stimulus and attention); AnalysisInputError if unusable."""
    df = frame.copy()
    if column_map:
        absent = [theirs for theirs in column_map if theirs not in df.columns]
        if absent:
            raise AnalysisInputError(
                f"the column map names column(s) {', '.join(absent)} that the data do not have "
                f"(columns: {', '.join(map(str, df.columns))})"
            )
        df = df.rename(columns=dict(column_map))
    df.columns = [str(c).strip() for c in df.columns]
    duplicated = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if duplicated:
        raise AnalysisInputError(f"column(s) appear more than once: {', '.join(duplicated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise AnalysisInputError(
            f"missing required column(s): {', '.join(missing)}; the data have: "
            f"{', '.join(df.columns) or '(no columns)'}. Rename yours with column_map / "
            "--map their_name=participant_id"
        )

    if "kind" in df.columns:
        kind = _as_text(df["kind"]).str.lower().fillna("stimulus")
        unknown = ~kind.isin(["stimulus", "attention"]).to_numpy(dtype=bool)
        if unknown.any():
            raise AnalysisInputError(
                "kind must be 'stimulus' or 'attention'; other values in "
                + _row_labels(df, unknown, from_file)
            )
        df["kind"] = kind.astype(object)
    else:
        df["kind"] = "stimulus"

    values = pd.to_numeric(df["value"], errors="coerce").astype(float)
    bad = ~np.isfinite(values.to_numpy())
    if bad.any():
        raise AnalysisInputError(
            "value must be a number; missing or not a number in " + _row_labels(df, bad, from_file)
        )
    df["value"] = values

    # Ids and levels are labels, never numbers: "007" and "7" are different participants.
    for column in _TEXT_COLUMNS:
        if column in df.columns and column != "kind":
            df[column] = _as_text(df[column])

    stimulus = (df["kind"] == "stimulus").to_numpy(dtype=bool)
    for column in _KEY_COLUMNS:
        empty = df[column].isna().to_numpy(dtype=bool) & stimulus
        if empty.any():
            raise AnalysisInputError(
                f"{column} is empty in rating row(s) " + _row_labels(df, empty, from_file)
            )
    for column in ("correct", "item_position", "ms_on_page"):
        if column in df.columns:
            df[column] = pd.to_numeric(df[column], errors="coerce")
    return df.reset_index(drop=True)


def split_kinds(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ratings of stimuli, attention-check answers) from a validated frame."""
    is_stimulus = df["kind"] == "stimulus"
    return df[is_stimulus].reset_index(drop=True), df[~is_stimulus].reset_index(drop=True)


def read_long_format(
    source: str | Path | pd.DataFrame,
    column_map: dict[str, str] | None = None,
    *,
    keep_attention: bool = False,
) -> pd.DataFrame:
    """Ratings in long format from a CSV path or a DataFrame, validated and typed.

    ``column_map`` renames the caller's columns (``{"their_name": "participant_id"}``).
    Only ``kind == "stimulus"`` rows are returned unless ``keep_attention`` is set; attention
    rows matter only for pass rates, and ``build_report`` accepts the frame with them.
    """
    from_file = not isinstance(source, pd.DataFrame)
    if from_file:
        path = Path(source)
        if not path.is_file():
            raise AnalysisInputError(f"no such file: {path}")
        try:
            # Everything as text first: ids keep leading zeros and bad values can be named.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise AnalysisInputError(f"cannot read {path} as CSV: {exc}") from exc
    else:
        frame = source
    df = validate_long_format(frame, column_map, from_file=from_file)
    return df if keep_attention else split_kinds(df)[0]


def _is_true(series: pd.Series) -> pd.Series:
    """A boolean column read from a file ("True"/"False", "1"/"0") or from the database."""
    if series.dtype == bool:
        return series
    return series.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def apply_inclusion(
    df: pd.DataFrame, rule: str | Iterable[str] | None = "included"
) -> pd.DataFrame:
    """Rows of the participants an inclusion rule counts (studies.domain.INCLUSION_RULES).

    "included": completed and not excluded; "completed": completed; "all" or None: every row.
    A list of statuses keeps those statuses (the command line's older form). Data without a
    participant_status column are kept whole; without an excluded column none count as
    excluded. Withdrawn participants never count.
    """
    if "participant_status" in df.columns:
        df = df[df["participant_status"] != "withdrawn"]
    if rule is None or rule == "all" or "participant_status" not in df.columns:
        return df.reset_index(drop=True)
    if isinstance(rule, str):
        if rule not in INCLUSION_RULES:
            raise AnalysisInputError(
                f"unknown inclusion rule {rule!r}: use one of {', '.join(INCLUSION_RULES)}"
            )
        keep = df["participant_status"] == "completed"
        if rule == "included" and "excluded" in df.columns:
            keep &= ~_is_true(df["excluded"])
    else:
        keep = df["participant_status"].isin([str(s) for s in rule])
    return df[keep].reset_index(drop=True)


def inclusion_rule(df: pd.DataFrame, rule: str | Iterable[str] | None = "included") -> str:
    """apply_inclusion's rule in words, for meta.inclusion."""
    if rule is None or rule == "all":
        return "all participants (no inclusion rule applied)"
    if "participant_status" not in df.columns:
        return "all participants (the data have no participant_status column)"
    if isinstance(rule, str):
        if rule == "included" and "excluded" not in df.columns:
            return "completed participants (the data have no excluded column)"
        return INCLUSION_RULES[rule]
    return f"participants with participant_status in {', '.join(map(str, rule))}"


def stimulus_key(df: pd.DataFrame) -> list[str]:
    """Columns that identify one rated stimulus (all the questions answered on one page)."""
    if "item_position" in df.columns and df["item_position"].notna().all():
        return ["participant_id", "item_position"]
    # Without positions, a participant never sees a query twice, so the query pins the page.
    return ["participant_id", "query_id", "response_type"]
