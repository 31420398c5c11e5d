"""A power result as a table, CSV, text and a Plotly power curve."""

from __future__ import annotations

import csv
import io

import plotly.graph_objects as go

from studies.analysis.figures import (
    MUTED_COLOUR,
    OKABE_ITO,
    RESPONSE_TYPE_COLOURS,
    _style,
    empty_figure,
    response_type_label,
)

TABLE_COLUMNS = (
    "participants",
    "term",
    "response_type",
    "kind",
    "true_effect",
    "power",
    "mc_se",
    "ci_low",
    "ci_high",
    "mean_estimate",
    "simulations",
    "failed",
)
TARGET_POWER = 0.8


def term_label(row: dict) -> str:
    """'Partial compliance' for a main effect, 'Partial compliance × malicious' for its
    interaction with motivation."""
    label = response_type_label(row.get("response_type"))
    if row.get("kind") == "interaction" and "motivation[" in row.get("term", ""):
        level = row["term"].split("motivation[", 1)[1].rstrip("]")
        return f"{label} × {level}"
    return label


def power_table(result: dict) -> list[dict]:
    """One row per participant count × term, the columns of TABLE_COLUMNS."""
    return [{c: row.get(c) for c in TABLE_COLUMNS} for row in result.get("rows") or []]


def power_csv(result: dict) -> str:
    """The table as CSV (numbers unrounded, so nothing is lost)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TABLE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(power_table(result))
    return out.getvalue()


def power_curve(result: dict) -> go.Figure:
    """Power against participants, one line per response-type term, 95% Monte Carlo bars."""
    rows = result.get("rows") or []
    title = f"Power to detect each response-type effect ({result.get('measure', '')})"
    if not rows:
        return empty_figure(title, "No simulations yet")
    fig = go.Figure()
    terms = list(dict.fromkeys(r["term"] for r in rows))
    for i, term in enumerate(terms):
        mine = [r for r in rows if r["term"] == term]
        first = mine[0]
        colour = RESPONSE_TYPE_COLOURS.get(first.get("response_type") or "", OKABE_ITO[i % 6])
        interaction = first.get("kind") == "interaction"
        fig.add_trace(
            go.Scatter(
                x=[r["participants"] for r in mine],
                y=[r["power"] for r in mine],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [r["ci_high"] - r["power"] for r in mine],
                    "arrayminus": [r["power"] - r["ci_low"] for r in mine],
                    "thickness": 1,
                    "width": 3,
                },
                mode="lines+markers",
                # Points at power 1 sit on the axis's end; they are drawn whole, not cut.
                cliponaxis=False,
                name=term_label(first),
                line={"color": colour, "dash": "dot" if interaction else "solid"},
                marker={"symbol": "diamond" if interaction else "circle", "size": 7},
                customdata=[[r["mc_se"], r.get("true_effect")] for r in mine],
                hovertemplate="%{x} participants: power %{y:.3f} (MC SE %{customdata[0]:.3f})"
                "<br>assumed effect %{customdata[1]}<extra>" + term_label(first) + "</extra>",
            )
        )
    fig.add_hline(
        y=TARGET_POWER,
        line={"dash": "dash", "color": MUTED_COLOUR, "width": 1},
        annotation_text="0.8",
        annotation_position="top left",
    )
    settings = result.get("settings") or {}
    subtitle = (
        f"{settings.get('simulations')} simulations per count, α = {settings.get('alpha')}"
        f"{', Holm-adjusted' if settings.get('adjust') == 'holm' else ''}; bars: 95% Monte "
        "Carlo intervals; effects relative to "
        f"{response_type_label(result.get('reference_level'))}"
    )
    fig.update_xaxes(title_text="Participants", rangemode="tozero")
    fig.update_yaxes(title_text="Power", range=[0, 1], tickformat=".0%", dtick=0.2)
    return _style(fig, title, subtitle, 480)


def power_text(result: dict) -> str:
    """The table as aligned text for the command line."""
    settings = result.get("settings") or {}
    lines = [
        f"Power for {result.get('measure')} (effects relative to {result.get('reference_level')}),"
        f" {settings.get('simulations')} simulations per count, alpha = {settings.get('alpha')}"
        f"{' (Holm-adjusted)' if settings.get('adjust') == 'holm' else ''},"
        f" seed {settings.get('seed')}",
        f"Assumptions: {(result.get('assumptions') or {}).get('source', '')}",
        "",
    ]
    rows = result.get("rows") or []
    terms = list(dict.fromkeys(r["term"] for r in rows))
    counts = list(dict.fromkeys(r["participants"] for r in rows))
    by = {(r["participants"], r["term"]): r for r in rows}
    labels = {t: term_label(next(r for r in rows if r["term"] == t)) for t in terms}
    width = max([len("participants"), *(len(labels[t]) for t in terms)])
    lines.append("participants".ljust(width) + "".join(f"{n:>15}" for n in counts))
    for t in terms:
        cells = "".join(f"{by[(n, t)]['power']:>8.3f} ±{by[(n, t)]['mc_se']:.3f}" for n in counts)
        lines.append(labels[t].ljust(width) + cells)
    lines.append("")
    lines.append("± is the Monte Carlo standard error sqrt(p(1-p)/simulations).")
    failed = sum(s.get("failed", 0) for s in result.get("sizes") or [])
    if failed:
        lines.append(f"{failed} simulated data sets could not be fitted (counted as not detected).")
    lines += result.get("notes") or []
    return "\n".join(lines) + "\n"
