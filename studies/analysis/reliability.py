"""Cronbach's alpha per construct, Krippendorff's alpha per measure, attention-check pass rates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import krippendorff
import numpy as np
import pandas as pd

from studies.analysis.common import num
from studies.analysis.frame import stimulus_key

# Krippendorff's ordinal metric needs a value x value table; beyond this many distinct values
# (continuous data) the interval metric is computed in closed form instead.
MAX_ORDINAL_VALUES = 100


def cronbach(items: np.ndarray) -> float | None:
    """Cronbach's alpha of complete rows of ``items`` (rows = rated stimuli, columns = items)."""
    n, k = items.shape
    if k < 2 or n < 2:
        return None
    total_var = items.sum(axis=1).var(ddof=1)
    if total_var <= 0:
        return None
    return num(k / (k - 1) * (1.0 - items.var(axis=0, ddof=1).sum() / total_var))


def cronbach_alphas(
    df: pd.DataFrame,
    constructs: Mapping[str, Sequence[str]],
    reverse_coded: Iterable[str] = (),
    points: int = 7,
) -> tuple[list[dict], list[str]]:
    """Alpha per construct over rated stimuli answering every item (reverse-coded items flipped)."""
    rows: list[dict] = []
    warnings: list[str] = []
    reverse = set(reverse_coded)
    key = stimulus_key(df)
    questions = set(df["question"].unique())
    for construct, items in constructs.items():
        items = list(items)
        missing = [i for i in items if i not in questions]
        if missing:
            warnings.append(f"construct {construct}: no ratings for item(s) {', '.join(missing)}")
        present = [i for i in items if i in questions]
        alpha, n = None, 0
        if len(present) >= 2:
            sub = df[df["question"].isin(present)]
            wide = sub.pivot_table(
                index=key, columns="question", values="value", aggfunc="mean", observed=True
            )[present].dropna()
            # A copy: flipping reverse-coded items must not write into pandas' buffer.
            values = np.array(wide.to_numpy(dtype=float), copy=True)
            flip = [j for j, item in enumerate(present) if item in reverse]
            values[:, flip] = points + 1 - values[:, flip]
            alpha, n = cronbach(values), len(values)
        else:
            warnings.append(f"construct {construct}: fewer than 2 items rated, no alpha")
        rows.append({"construct": construct, "items": items, "alpha": alpha, "n": int(n)})
    return rows, warnings


def _interval_alpha(values: np.ndarray, units: np.ndarray) -> float | None:
    """Krippendorff's alpha, interval metric, from pairable values and their unit codes."""
    n = values.size
    if n < 2:
        return None
    counts = np.bincount(units)
    means = np.bincount(units, weights=values) / np.where(counts > 0, counts, 1)
    within = np.bincount(units, weights=(values - means[units]) ** 2)
    # Observed disagreement: per unit, sum over ordered pairs of squared differences
    # = 2 m SS_u, divided by (m - 1); expected: the same over all pairable values.
    used = counts >= 2
    d_o = (2 * counts[used] * within[used] / (counts[used] - 1)).sum() / n
    d_e = 2 * n * ((values - values.mean()) ** 2).sum() / (n * (n - 1))
    return num(1.0 - d_o / d_e) if d_e > 0 else None


def krippendorff_alphas(df: pd.DataFrame, measures: Sequence[str]) -> tuple[list[dict], list[str]]:
    """Alpha per measure: units are query x response type, coders participants, >= 2 ratings.

    The ordinal alpha comes from ``krippendorff.alpha`` given the units' value counts, which
    is the same statistic as from the coders x units table without building that table.
    """
    rows: list[dict] = []
    warnings: list[str] = []
    for measure in measures:
        data = df[df["question"] == measure]
        # Units as integer codes (query x response type): no text is built per rating.
        query = pd.factorize(data["query_id"])[0].astype(np.int64)
        kind = pd.factorize(data["response_type"])[0].astype(np.int64)
        unit = pd.factorize(query * (int(kind.max(initial=0)) + 1) + kind)[0]
        pairable = np.bincount(unit)[unit] >= 2 if unit.size else np.zeros(0, dtype=bool)
        unit = pd.factorize(unit[pairable])[0]
        n_units = int(unit.max(initial=-1)) + 1
        values = data["value"].to_numpy(dtype=float)[pairable]
        distinct = np.unique(values)
        alpha: float | None = None
        level = "ordinal"
        if n_units >= 1 and distinct.size >= 2:
            if distinct.size <= MAX_ORDINAL_VALUES:
                counts = np.zeros((n_units, distinct.size))
                np.add.at(counts, (unit, np.searchsorted(distinct, values)), 1)
                alpha = num(
                    krippendorff.alpha(
                        value_counts=counts,
                        value_domain=distinct,
                        level_of_measurement="ordinal",
                    )
                )
            else:
                level = "interval"
                alpha = _interval_alpha(values, unit)
                warnings.append(
                    f"{measure}: {distinct.size} distinct values is not an ordinal scale; "
                    "Krippendorff's alpha uses the interval metric"
                )
        rows.append({"measure": measure, "alpha": alpha, "n_units": n_units, "level": level})
    return rows, warnings


def attention_pass_rates(attention: pd.DataFrame) -> list[dict]:
    """Share answering each attention check correctly, then over all checks (``check`` = all).

    Counted over everyone who answered, before inclusion: a pass rate among only the
    participants kept would hide the failures that led to exclusions.
    """
    if attention.empty or "correct" not in attention.columns:
        return []
    data = attention[attention["correct"].notna()]
    if data.empty:
        return []
    passed = np.isclose(data["value"].to_numpy(dtype=float), data["correct"].to_numpy(dtype=float))
    frame = pd.DataFrame({"check": data["question"].to_numpy(), "passed": passed})
    rows = [
        {"check": str(check), "n": int(len(g)), "pass_rate": num(g["passed"].mean())}
        for check, g in frame.groupby("check", sort=True)
    ]
    rows.append({"check": "all", "n": int(len(frame)), "pass_rate": num(frame["passed"].mean())})
    return rows
