"""Small helpers every analysis part shares: JSON-safe numbers and a stable level order."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from studies.domain import MOTIVATION_LEVELS, RESPONSE_TYPES

# Reports list levels in the order a reader expects (the paper's), not alphabetically.
_PREFERRED_ORDER: dict[str, tuple[str, ...]] = {
    "response_type": RESPONSE_TYPES,
    "motivation": MOTIVATION_LEVELS,
    "alignment": ("aligned", "misaligned"),
}


def num(x: Any) -> float | None:
    """A finite float, or None for NaN, inf, None and anything not a number."""
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _distinct(values: Iterable[Any]) -> list[Any]:
    """Non-missing distinct values in order of appearance, without a Python loop per row."""
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return list(series.dropna().unique())


def ordered_levels(factor: str, levels: Iterable[Any]) -> list[str]:
    """Distinct non-missing ``levels``: known ones in their usual order, the rest alphabetically."""
    present = {str(v) for v in _distinct(levels)}
    known = [level for level in _PREFERRED_ORDER.get(factor, ()) if level in present]
    return known + sorted(present - set(known))


def measure_order(questions: Iterable[Any]) -> list[str]:
    """Questions in order of first appearance (exports list them in the spec's order)."""
    return list(dict.fromkeys(str(q) for q in _distinct(questions)))
