"""Cell means with t-based 95% CIs, Likert distributions and eta squared per measure."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from studies.analysis.common import num, ordered_levels

# Descriptive rows always carry these keys, so every row has the same table columns.
ROW_FACTORS: tuple[str, ...] = ("response_type", "motivation", "alignment")


def groupings(factors: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty combination of ``factors``: singles first, then pairs, then all."""
    return [
        combo
        for size in range(1, len(factors) + 1)
        for combo in itertools.combinations(factors, size)
    ]


def _ci(n: int, mean: float, sd: float) -> tuple[float | None, float | None]:
    """t-based 95% CI of a mean; None when n < 2 leaves no spread to estimate."""
    if n < 2 or not np.isfinite(sd):
        return None, None
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    return num(mean - half), num(mean + half)


def describe(df: pd.DataFrame, measures: Sequence[str], factors: Sequence[str]) -> list[dict]:
    """n, mean, SD and 95% CI per measure for every grouping of ``factors`` and level cell."""
    rows: list[dict] = []
    data = df[df["question"].isin(list(measures))]
    for combo in groupings(factors):
        cols = list(combo)
        stats_by_cell = (
            data.groupby(["question", *cols], observed=True, dropna=True)["value"]
            .agg(["count", "mean", "std"])
            .reset_index()
        )
        # Plain labels: a categorical key would sort by its categories below, not our order.
        stats_by_cell = stats_by_cell.astype({c: object for c in ["question", *cols]})
        orders = {c: ordered_levels(c, stats_by_cell[c]) for c in cols}
        # Sort by display order of measures and levels rather than alphabetically.
        key = pd.DataFrame(
            {"question": stats_by_cell["question"].map({m: i for i, m in enumerate(measures)})}
            | {c: stats_by_cell[c].map({lv: i for i, lv in enumerate(orders[c])}) for c in cols}
        )
        stats_by_cell = stats_by_cell.loc[key.sort_values(list(key.columns)).index]
        for rec in stats_by_cell.itertuples(index=False):
            rec = rec._asdict()
            n = int(rec["count"])
            sd = float(rec["std"]) if n >= 2 else float("nan")
            low, high = _ci(n, rec["mean"], sd)
            row = {"measure": rec["question"], "grouping": "×".join(combo)}
            row |= {f: (str(rec[f]) if f in combo else None) for f in ROW_FACTORS}
            row |= {
                "n": n,
                "mean": num(rec["mean"]),
                "sd": num(sd),
                "ci_low": low,
                "ci_high": high,
            }
            rows.append(row)
    # Group rows per measure (groupings inside), the order a per-measure table wants.
    position = {m: i for i, m in enumerate(measures)}
    return sorted(rows, key=lambda r: position[r["measure"]])


def distributions(df: pd.DataFrame, measures: Sequence[str]) -> list[dict]:
    """Count and share of each scale point per measure; measures with non-integer values skipped.

    Composites (means of items) and continuous data have no scale points to count.
    """
    rows: list[dict] = []
    for measure in measures:
        values = df.loc[df["question"] == measure, "value"].to_numpy(dtype=float)
        if values.size == 0 or not np.all(values == np.round(values)):
            continue
        points, counts = np.unique(values.astype(np.int64), return_counts=True)
        total = counts.sum()
        rows += [
            {"measure": measure, "value": int(p), "count": int(c), "share": float(c / total)}
            for p, c in zip(points, counts, strict=True)
        ]
    return rows


def eta_squared(df: pd.DataFrame, measures: Sequence[str], factors: Sequence[str]) -> list[dict]:
    """Share of rating variance between the levels of each factor (SS between / SS total)."""
    rows: list[dict] = []
    for measure in measures:
        data = df[df["question"] == measure]
        for factor in factors:
            eta: float | None = None
            # A factor missing on some rows is judged on the rows that have it.
            sub = data[data[factor].notna()] if factor in data.columns else data.iloc[0:0]
            values = sub["value"].to_numpy(dtype=float)
            if values.size:
                total = float(((values - values.mean()) ** 2).sum())
                means = sub.groupby(factor, observed=True)["value"].agg(["mean", "count"])
                between = float((means["count"] * (means["mean"] - values.mean()) ** 2).sum())
                eta = num(between / total) if total > 0 else None
            rows.append({"measure": measure, "factor": factor, "eta_squared": eta})
    return rows
