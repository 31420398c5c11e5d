"""Pure statistics of model behaviour: response-type shares per cell with Wilson 95% CIs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from modellab import proportions

#: The category and framing value of the rows that pool every category (or framing).
ALL = "(all)"
UNPARSED = "unparsed"


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of successes / n; (NaN, NaN) for an empty cell (n = 0)."""
    if n == 0 and successes == 0:
        return math.nan, math.nan
    return proportions.wilson_interval(successes, n, confidence)


def distribution_rows(
    observations: Iterable[tuple[str, str, str, str]],
    labels: Sequence[str],
    *,
    framings: Sequence[str] = (),
    confidence: float = 0.95,
) -> list[dict]:
    """Shares of each label per (model, category, framing), one row per label of each cell.

    ``observations``: (model, category, framing, label) per labelled response; ``label`` is
    one of ``labels`` or ``unparsed``. Shares and their Wilson CIs are of the parsed responses
    of the cell (``n``; share and CI None when it has none); ``n_unparsed`` and
    ``n_responses`` (parsed + unparsed) sit on every row of the cell, so an unreadable answer
    is counted, never dropped. Besides each cell, every model gets rows pooling the framings
    of each category (framing ``(all)``), the categories of each framing (category ``(all)``)
    and everything (both ``(all)``). Cells come in the order: model as first
    seen, categories sorted then ``(all)``, ``framings`` first in the given order.
    A label outside ``labels`` and ``unparsed`` raises ValueError.
    """
    known = set(labels)
    cells: dict[tuple[str, str, str], Counter] = {}
    models: list[str] = []
    categories: set[str] = set()
    seen_framings: list[str] = []
    for model, category, framing, label in observations:
        if label not in known and label != UNPARSED:
            raise ValueError(f"label {label!r} is not one of {', '.join(labels)} or unparsed")
        if model not in models:
            models.append(model)
        if framing not in seen_framings:
            seen_framings.append(framing)
        categories.add(category)
        for key in (
            (model, category, framing),
            (model, category, ALL),
            (model, ALL, framing),
            (model, ALL, ALL),
        ):
            cells.setdefault(key, Counter())[label] += 1
    framing_order = [f for f in framings if f in seen_framings]
    framing_order += sorted(f for f in seen_framings if f not in framing_order)
    rows: list[dict] = []
    for model in models:
        for category in [*sorted(categories), ALL]:
            for framing in [*framing_order, ALL]:
                counts = cells.get((model, category, framing))
                if counts is None:
                    continue
                unparsed = counts[UNPARSED]
                parsed = sum(counts.values()) - unparsed
                for label in labels:
                    count = counts[label]
                    # No parsed response in the cell: no share to give (None, not NaN, so
                    # the rows go to JSON as they are).
                    low, high = (
                        wilson_interval(count, parsed, confidence) if parsed else (None, None)
                    )
                    rows.append(
                        {
                            "model": model,
                            "category": category,
                            "framing": framing,
                            "label": label,
                            "count": count,
                            "n": parsed,
                            "share": count / parsed if parsed else None,
                            "ci_low": low,
                            "ci_high": high,
                            "n_unparsed": unparsed,
                            "n_responses": parsed + unparsed,
                        }
                    )
    return rows
