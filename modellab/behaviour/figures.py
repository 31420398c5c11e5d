"""Plotly figures and tables of model behaviour: response types per model by category × framing."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Iterable, Sequence

import plotly.graph_objects as go

from modellab.behaviour.stats import ALL
from modellab.classifiers.labels import DISPLAY, FULL_COMPLIANCE, FULL_REFUSAL, PARTIAL_REFUSAL
from studies.analysis.figures import (
    OKABE_ITO,
    RESPONSE_TYPE_COLOURS,
    _style,
    empty_figure,
    humanise,
    slugify,
)

# Three-way labels keep the colours of the five-way types they pool (refusals vermillion,
# partial blue, compliance green), so a reader moving between schemes reads them alike.
LABEL_COLOURS: dict[str, str] = {
    **RESPONSE_TYPE_COLOURS,
    FULL_REFUSAL: RESPONSE_TYPE_COLOURS["direct_refusal"],
    PARTIAL_REFUSAL: RESPONSE_TYPE_COLOURS["partial_compliance"],
    FULL_COMPLIANCE: RESPONSE_TYPE_COLOURS["full_compliance"],
}
# Short forms for the chart's axis, where fifteen bars share the width.
FRAMING_TICKS: dict[str, str] = {
    "query_only": "Query",
    "benign": "Benign",
    "malicious": "Malicious",
}
FRAMING_LABELS: dict[str, str] = {
    "query_only": "Query only",
    "benign": "Benign scenario",
    "malicious": "Malicious scenario",
    ALL: "All framings",
}


def label_text(label: str) -> str:
    return DISPLAY.get(label, humanise(label))


def category_text(category: str) -> str:
    return "All categories" if category == ALL else humanise(category)


def framing_text(framing: str) -> str:
    return FRAMING_LABELS.get(framing, humanise(framing))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def figure_slug(model: str) -> str:
    return "model-" + slugify(model)


def _cells(rows: Iterable[dict], model: str) -> list[tuple[str, str]]:
    """The (category, framing) cells of one model in the rows' order, framing ``(all)`` left
    out (the chart shows each framing; the table has the pooled rows)."""
    return list(
        dict.fromkeys(
            (r["category"], r["framing"])
            for r in rows
            if r["model"] == model and r["framing"] != ALL
        )
    )


def model_figure(rows: Sequence[dict], model: str, labels: Sequence[str]) -> go.Figure:
    """Stacked bars: each label's share of one model's parsed responses per category × framing.

    Hover gives the count, the share and its Wilson 95% CI; the x labels say how many
    responses each bar has and how many could not be parsed (those are not in the shares).
    """
    title = f"{model}: response types by category and framing"
    cells = _cells(rows, model)
    if not cells:
        return empty_figure(title, "No labelled responses")
    by = {(r["category"], r["framing"], r["label"]): r for r in rows if r["model"] == model}
    first = {(c, f): by[(c, f, labels[0])] for c, f in cells}
    x = [
        [category_text(c) for c, _f in cells],
        [
            f"{FRAMING_TICKS.get(f, framing_text(f))}<br>n={first[(c, f)]['n']}"
            + (
                f"<br>+{first[(c, f)]['n_unparsed']} unparsed"
                if first[(c, f)]["n_unparsed"]
                else ""
            )
            for c, f in cells
        ],
    ]
    fig = go.Figure()
    for i, label in enumerate(labels):
        cell_rows = [by[(c, f, label)] for c, f in cells]
        fig.add_trace(
            go.Bar(
                x=x,
                y=[r["share"] for r in cell_rows],
                name=label_text(label),
                marker={
                    "color": LABEL_COLOURS.get(label, OKABE_ITO[i % len(OKABE_ITO)]),
                    "line": {"width": 1, "color": "white"},
                },
                customdata=[
                    [r["count"], r["n"], _pct(r["ci_low"]), _pct(r["ci_high"])] for r in cell_rows
                ],
                hovertemplate=(
                    "%{customdata[0]} of %{customdata[1]}: %{y:.0%} "
                    "[95% CI %{customdata[2]}, %{customdata[3]}]"
                    f"<extra>{html.escape(label_text(label))}</extra>"
                ),
            )
        )
    fig.update_layout(barmode="stack", bargap=0.2, legend={"traceorder": "normal"})
    fig.update_yaxes(
        tickformat=".0%", range=[0, 1], autorange=False, title_text="Share of parsed responses"
    )
    fig.update_xaxes(tickangle=0, tickfont={"size": 12})
    height = 520
    return _style(
        fig,
        title,
        "Shares of each label; counts and Wilson 95% CIs in the hover and the table",
        height,
    )


def figures_for(rows: Sequence[dict], labels: Sequence[str]) -> dict[str, go.Figure]:
    """One figure per model, keyed by figure_slug(model)."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    return {figure_slug(m): model_figure(rows, m, labels) for m in models}


def table_for(rows: Sequence[dict], model: str, labels: Sequence[str]) -> list[dict]:
    """One model's distribution as table rows: one per (category, framing), a cell per label."""
    by = {(r["category"], r["framing"], r["label"]): r for r in rows if r["model"] == model}
    cells = list(dict.fromkeys((r["category"], r["framing"]) for r in rows if r["model"] == model))
    out = []
    for category, framing in cells:
        label_rows = [by[(category, framing, label)] for label in labels]
        out.append(
            {
                "category": category_text(category),
                "framing": framing_text(framing),
                "pooled": category == ALL or framing == ALL,
                "n": label_rows[0]["n"],
                "n_unparsed": label_rows[0]["n_unparsed"],
                "n_responses": label_rows[0]["n_responses"],
                "cells": [
                    {
                        "count": r["count"],
                        "share": _pct(r["share"]),
                        "ci": f"{_pct(r['ci_low'])}–{_pct(r['ci_high'])}"
                        if r["ci_low"] is not None
                        else "—",
                    }
                    for r in label_rows
                ],
            }
        )
    return out


def csv_text(rows: Iterable[dict], columns: Sequence[str]) -> str:
    """Rows as CSV (UTF-8 text; numbers as Python writes them, empty for None)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    return buffer.getvalue()
