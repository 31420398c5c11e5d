"""The false-refusal page's charts and table rows, from run_rates' plain data (no Django)."""

from __future__ import annotations

import re

DEFINITIONS: tuple[tuple[str, str], ...] = (
    ("full", "Full refusal"),
    ("full_or_partial", "Full + partial refusal"),
)
# Colour-blind-safe pair (Okabe–Ito), the same on every model's chart.
COLOURS = {"full": "#0072B2", "full_or_partial": "#E69F00"}


def figure_slug(model: str) -> str:
    return "frr-" + re.sub(r"[^a-z0-9]+", "-", model.lower()).strip("-")


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def model_figure(model: dict) -> dict:
    """One model's bars: per prompt group, both rates in percent with Wilson 95% error bars."""
    groups = [g for g in model["groups"] if g["n"]]
    data = []
    for key, name in DEFINITIONS:
        rates = [g[key] for g in groups]
        data.append(
            {
                "type": "bar",
                "name": name,
                "x": [g["group"] for g in groups],
                "y": [_percent(r["rate"]) for r in rates],
                "marker": {"color": COLOURS[key]},
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [round(100 * (r["ci_high"] - r["rate"]), 2) for r in rates],
                    "arrayminus": [round(100 * (r["rate"] - r["ci_low"]), 2) for r in rates],
                },
                "customdata": [[r["count"], r["n"]] for r in rates],
                "hovertemplate": "%{x}: %{y:.1f}% (%{customdata[0]} of %{customdata[1]})"
                "<extra>" + name + "</extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            "title": {"text": f"{model['model']}: false-refusal rate with Wilson 95% CI"},
            "barmode": "group",
            "yaxis": {"title": {"text": "% of labelled responses"}, "range": [0, 100]},
            "xaxis": {"title": {"text": "Prompt group"}},
            "legend": {"orientation": "h", "y": -0.25},
            "margin": {"t": 60, "b": 90},
            "height": 380,
        },
    }


def table_rows(models: list[dict]) -> list[dict]:
    """One row per model and group, rates as text (``12.5% [8.1, 18.7]``)."""
    rows = []
    for model in models:
        for group in model["groups"]:
            rows.append(
                {
                    "model": model["model"],
                    "group": group["group"],
                    "n": group["n"],
                    "full_count": group["full"]["count"],
                    "full": _rate_text(group["full"]),
                    "either_count": group["full_or_partial"]["count"],
                    "either": _rate_text(group["full_or_partial"]),
                    "unparsed": group["unparsed"],
                }
            )
        if not model["groups"]:
            rows.append({"model": model["model"], "group": "—", "n": 0, "empty": True})
    return rows


def _rate_text(p: dict) -> str:
    if p["rate"] is None:
        return "–"
    return f"{100 * p['rate']:.1f}% [{100 * p['ci_low']:.1f}, {100 * p['ci_high']:.1f}]"
