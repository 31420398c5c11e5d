"""Composite measures: per rated stimulus, the mean of several items after reverse coding."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from studies.analysis.frame import AnalysisInputError, stimulus_key


def normalise_composites(
    composites: Mapping[str, Mapping] | None,
    reverse_coded: Iterable[str] = (),
    points: int = 7,
) -> dict[str, dict]:
    """{name: {"items", "reverse_coded", "points"}} with defaults filled in; bad specs raise."""
    out: dict[str, dict] = {}
    default_reverse = set(reverse_coded)
    for name, spec in (composites or {}).items():
        items = [str(i) for i in spec.get("items", [])]
        if not items:
            raise AnalysisInputError(f"composite {name!r} lists no items")
        # A composite without its own reverse list uses the global one for its items.
        reverse = spec.get("reverse_coded")
        reverse = [i for i in items if i in default_reverse] if reverse is None else list(reverse)
        stray = [i for i in reverse if i not in items]
        if stray:
            raise AnalysisInputError(
                f"composite {name!r} reverse-codes {', '.join(stray)}, which are not its items"
            )
        out[str(name)] = {
            "items": items,
            "reverse_coded": reverse,
            "points": int(spec.get("points", points)),
        }
    return out


def add_composites(
    df: pd.DataFrame, composites: Mapping[str, Mapping]
) -> tuple[pd.DataFrame, list[str]]:
    """``df`` plus one row per rated stimulus and composite (question = the composite's name).

    A stimulus counts only when every item of the composite was answered, so all composite
    scores average the same items. Returns the frame and warnings.
    """
    warnings: list[str] = []
    if not composites:
        return df, warnings
    key = stimulus_key(df)
    questions = set(df["question"].unique())
    # The stimulus' own columns (query, type, motivation, ...) are copied onto its composites.
    template = df.drop_duplicates(subset=key).drop(columns=["question", "value"])
    new_frames = []
    for name, spec in composites.items():
        if name in questions:
            warnings.append(f"composite {name}: a question has that name; composite skipped")
            continue
        items = spec["items"]
        missing = [i for i in items if i not in questions]
        if missing:
            warnings.append(f"composite {name}: no ratings for {', '.join(missing)}; skipped")
            continue
        wide = df[df["question"].isin(items)].pivot_table(
            index=key, columns="question", values="value", aggfunc="mean", observed=True
        )[items]
        complete = wide.dropna()
        if len(complete) < len(wide):
            warnings.append(
                f"composite {name}: {len(wide) - len(complete)} rated stimuli lack an item "
                "and have no score"
            )
        flipped = complete.copy()
        for item in spec["reverse_coded"]:
            flipped[item] = spec["points"] + 1 - flipped[item]
        scores = flipped.mean(axis=1).rename("value").reset_index()
        rows = template.merge(scores, on=key, how="inner")
        rows["question"] = name
        new_frames.append(rows[df.columns])
    if not new_frames:
        return df, warnings
    return pd.concat([df, *new_frames], ignore_index=True), warnings
