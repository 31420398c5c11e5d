"""Plotly figures of the analysis report, and HTML for embedding or downloading them offline."""

from __future__ import annotations

import html
import math
import re
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Any

import plotly
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from studies.analysis import claims
from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES

# Okabe–Ito: distinguishable under the common colour-vision deficiencies and in greyscale
# print. Each response type keeps its colour in every chart so readers learn it once.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#F0E442",  # yellow (only for fills: too light for text or thin lines)
    "#000000",
)
RESPONSE_TYPE_COLOURS: dict[str, str] = {
    "direct_refusal": "#D55E00",
    "explanation_based": "#E69F00",
    "redirection": "#CC79A7",
    "partial_compliance": "#0072B2",
    "full_compliance": "#009E73",
}
# Symbols as well as colours, so the two motivations differ even for a reader who sees no colour.
SYMBOLS: tuple[str, ...] = ("circle", "diamond", "square", "triangle-up", "x", "star")
TEXT_COLOUR = "#1b1f24"
MUTED_COLOUR = "#57606a"
GRID_COLOUR = "#EBF0F8"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

# Figure slugs appear in download URLs (`figure/<slug>.html`); keep them stable.
MAIN_FIGURE_SLUGS: tuple[str, ...] = (
    "coefficients",
    "interaction",
    "gap_reduction",
    "variance_explained",
)
DISTRIBUTION_PREFIX = "distribution_"

# Plotly's modebar config for every chart. The camera button ("Download plot as a PNG") is
# how a researcher gets a PNG per chart without kaleido on the server; the logo is dropped
# because it is a link to an external site.
PLOT_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "displayModeBar": True,
    "responsive": True,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}


# ----------------------------------------------------------------------------- labels, order


def response_type_label(response_type: str | None) -> str:
    """The human label of a response type ("direct_refusal" → "Direct refusal")."""
    if response_type is None:
        return "All"
    return RESPONSE_TYPE_LABELS.get(response_type, humanise(response_type))


def humanise(key: str | None) -> str:
    """A code as words ("future_willingness" → "Future willingness")."""
    if not key:
        return ""
    text = str(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def slugify(text: str) -> str:
    """A URL-path-safe slug (lowercase letters, digits, _ and -)."""
    slug = re.sub(r"[^a-z0-9_]+", "-", str(text).lower()).strip("-")
    return slug or "figure"


def distribution_slug(measure: str) -> str:
    """The figure slug of one measure's rating distribution."""
    return DISTRIBUTION_PREFIX + slugify(measure)


def _ordered(values: list[str | None], canonical: tuple[str, ...] = ()) -> list[str | None]:
    """Distinct values, canonical ones first in canonical order, the rest as first seen."""
    seen = list(dict.fromkeys(values))
    return [v for v in canonical if v in seen] + [v for v in seen if v not in canonical]


def _measures(report: dict, rows: list[dict]) -> list[str]:
    """Measures in the report's display order, then any the rows add (a partial report)."""
    declared = [m for m in ((report.get("meta") or {}).get("measures") or [])]
    present = [r.get("measure") for r in rows if r.get("measure") is not None]
    return [m for m in declared if m in present] + [
        m for m in dict.fromkeys(present) if m not in declared
    ]


def _num(value: Any) -> float | None:
    """A finite float or None, so a stray NaN/None never breaks arithmetic or the JSON."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _errors(
    centre: list[float | None], lows: list[float | None], highs: list[float | None]
) -> tuple[list[float | None], list[float | None]]:
    """Plotly's asymmetric error arrays (above, below) from CI bounds; None where unknown."""
    plus = [
        h - c if h is not None and c is not None else None
        for c, h in zip(centre, highs, strict=True)
    ]
    minus = [
        c - lo if lo is not None and c is not None else None
        for c, lo in zip(centre, lows, strict=True)
    ]
    return plus, minus


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def scale_points(report: dict) -> int:
    """The top of the rating scale (1..points): the report's own, else the largest rating seen."""
    meta = report.get("meta") or {}
    points = _num(meta.get("scale_points"))
    if points is None:
        seen = [_num(r.get("value")) for r in report.get("distributions") or []]
        points = max([v for v in seen if v is not None] or [7.0])
    return max(2, int(points))


# Means sit on the scale, 1..points: the axis shows the whole scale and a little more, never a
# range stretched by a wide interval (three participants once gave an axis from -20 to 40).
SCALE_PADDING = 0.3


def scale_range(points: int) -> list[float]:
    """A value axis for means on a 1..points scale."""
    return [1 - SCALE_PADDING, points + SCALE_PADDING]


def difference_range(values: list[float | None], points: int) -> list[float]:
    """A symmetric axis around 0 for differences of means: wide enough for the estimates and
    their intervals, never wider than the largest possible difference (points - 1)."""
    seen = [abs(v) for v in values if v is not None]
    half = min(points - 1, max(0.5, 1.15 * max(seen, default=0.0)))
    return [-half, half]


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = max(1, min(max_cols, n))
    return math.ceil(n / cols), cols


# ----------------------------------------------------------------------------- layout


def _style(fig: go.Figure, title: str, subtitle: str | None, height: int) -> go.Figure:
    """Shared look: readable font, white background, legend below (narrow phones).

    The look of Plotly's "plotly_white" set by hand on an empty template: validating that
    template cost a quarter of a second per figure on every results page, and its copy in each
    figure's JSON tripled the page's size.
    """
    fig.update_layout(
        template="none",
        paper_bgcolor="white",
        plot_bgcolor="white",
        colorway=list(OKABE_ITO),
        title={
            "text": title,
            "subtitle": {"text": subtitle or ""},
            "x": 0,
            "xanchor": "left",
        },
        font={"family": FONT, "size": 14, "color": TEXT_COLOUR},
        height=height,
        margin={"l": 10, "r": 20, "t": 90, "b": 110},
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 0,
            "yanchor": "bottom",
            "x": 0,
            "xanchor": "left",
        },
        hoverlabel={"font": {"family": FONT}},
    )
    axes = {
        "title_font": {"size": 14},
        "gridcolor": GRID_COLOUR,
        "linecolor": GRID_COLOUR,
        "zerolinecolor": GRID_COLOUR,
        "zerolinewidth": 2,
        "ticks": "",
        "automargin": True,
    }
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    fig.update_annotations(font={"size": 14})
    return fig


def empty_figure(title: str, message: str = "No data") -> go.Figure:
    """A figure that says there is nothing to plot, instead of failing or showing blank axes."""
    fig = go.Figure()
    fig.add_annotation(
        text=message,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 18, "color": MUTED_COLOUR},
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    _style(fig, title, None, 300)
    fig.update_layout(margin={"b": 20})
    return fig


def _is_empty(fig: go.Figure) -> bool:
    return len(fig.data) == 0


# ----------------------------------------------------------------------------- figures


def _main_effects(model: dict, reference: str | None) -> list[dict]:
    """The response-type main effects of one model (interaction terms carry a ':')."""
    out = []
    for coef in model.get("coefficients") or []:
        term = str(coef.get("term") or "")
        rt = coef.get("response_type")
        if rt is None or ":" in term or rt == reference or _num(coef.get("estimate")) is None:
            continue
        out.append(coef)
    return out


def coefficient_plot(report: dict) -> go.Figure:
    """Effect of each response type vs the reference, one panel per measure (as in the paper).

    Points are estimates, horizontal bars 95% CIs, text the significance stars the report
    computed; the dashed line at 0 is "no different from the reference". With interactions in
    the model these are the effects at the reference level of the other factors.
    """
    meta = report.get("meta") or {}
    reference = meta.get("reference_level")
    title = "Effect of response type on each measure"
    models = [m for m in report.get("mixed_models") or [] if isinstance(m, dict)]
    by_measure = {m.get("measure"): _main_effects(m, reference) for m in models}
    measures = [m for m in _measures(report, models) if by_measure.get(m)]
    if not measures:
        return empty_figure(title, "No model coefficients")

    types = _ordered(
        [c.get("response_type") for m in measures for c in by_measure[m]], RESPONSE_TYPES
    )
    bounds = [
        _num(c.get(k))
        for m in measures
        for c in by_measure[m]
        for k in ("estimate", "ci_low", "ci_high")
    ]
    rows, cols = _grid(len(measures))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        shared_yaxes=True,
        subplot_titles=[humanise(m) for m in measures],
        horizontal_spacing=0.04,
        vertical_spacing=min(0.12, 0.5 / rows),
    )
    for i, measure in enumerate(measures):
        row, col = divmod(i, cols)
        coefs = {c["response_type"]: c for c in by_measure[measure]}
        present = [t for t in types if t in coefs]
        est = [_num(coefs[t].get("estimate")) for t in present]
        lows = [_num(coefs[t].get("ci_low")) for t in present]
        highs = [_num(coefs[t].get("ci_high")) for t in present]
        plus, minus = _errors(est, lows, highs)
        stars = [str(coefs[t].get("stars") or "") for t in present]
        labels = [response_type_label(t) for t in present]
        fig.add_trace(
            go.Scatter(
                x=est,
                y=labels,
                mode="markers+text",
                name=humanise(measure),
                showlegend=False,
                marker={
                    "size": 11,
                    "color": [RESPONSE_TYPE_COLOURS.get(t, OKABE_ITO[0]) for t in present],
                    "line": {"width": 1, "color": TEXT_COLOUR},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": plus,
                    "arrayminus": minus,
                    "color": MUTED_COLOUR,
                    "thickness": 2,
                    "width": 4,
                },
                text=stars,
                textposition="top center",
                # Stars of the top row sit above the plot area; clipping would hide them.
                cliponaxis=False,
                textfont={"size": 15, "color": TEXT_COLOUR},
                customdata=[
                    [
                        _fmt(lo),
                        _fmt(hi),
                        _fmt(_num(coefs[t].get("p")), 4),
                        _fmt(_num(coefs[t].get("p_holm")), 4),
                    ]
                    for t, lo, hi in zip(present, lows, highs, strict=True)
                ],
                hovertemplate=(
                    "%{y}: %{x:.2f} [%{customdata[0]}, %{customdata[1]}]"
                    "<br>p = %{customdata[2]}, Holm p = %{customdata[3]}"
                    f"<extra>{html.escape(humanise(measure))}</extra>"
                ),
            ),
            row=row + 1,
            col=col + 1,
        )
        fig.add_vline(
            x=0, line={"dash": "dash", "color": MUTED_COLOUR, "width": 1}, row=row + 1, col=col + 1
        )
    # Categories top-to-bottom in the canonical order (direct refusal first), as read.
    fig.update_yaxes(
        categoryorder="array",
        categoryarray=[response_type_label(t) for t in types],
        # Reversed (first type on top) with room above the top row for its stars.
        range=[len(types) - 0.5, -0.8],
    )
    fig.update_xaxes(
        zeroline=False, range=difference_range(bounds, scale_points(report)), autorange=False
    )
    ref_label = response_type_label(reference) if reference else "the reference"
    for col in range(1, cols + 1):
        fig.update_xaxes(title_text=f"Difference from {ref_label}", row=rows, col=col)
    height = 110 + rows * (80 + 42 * len(types))
    _style(
        fig,
        title,
        f"Mixed-model estimates vs {ref_label} with 95% CIs; stars mark significance",
        height,
    )
    fig.update_layout(margin={"b": 20})  # no legend to make room for
    return fig


def _interaction_rows(report: dict) -> tuple[list[dict], bool]:
    """Descriptive rows by response type × motivation, or by response type alone as fallback."""
    rows = [r for r in report.get("descriptives") or [] if isinstance(r, dict)]

    def grouping(r: dict) -> set[str]:
        # "response_type×motivation" as specified; "*" and ":" accepted from older reports.
        return set(re.split(r"\s*[×*:]\s*", str(r.get("grouping") or "")))

    crossed = [r for r in rows if grouping(r) == {"response_type", "motivation"}]
    if crossed:
        return crossed, True
    return [r for r in rows if grouping(r) == {"response_type"}], False


def interaction_plot(report: dict, measure: str | None = None) -> go.Figure:
    """Means with 95% CIs by response type × motivation; one panel per measure unless one is named.

    Falls back to means by response type alone when the study has no motivation factor.
    """
    title = "Means by response type and motivation"
    if measure is not None:
        title = f"{humanise(measure)}: means by response type and motivation"
    rows, crossed = _interaction_rows(report)
    if measure is not None:
        rows = [r for r in rows if r.get("measure") == measure]
    rows = [r for r in rows if _num(r.get("mean")) is not None]
    measures = _measures(report, rows)
    if not measures:
        return empty_figure(title)

    types = _ordered([r.get("response_type") for r in rows], RESPONSE_TYPES)
    motivations = (
        _ordered([r.get("motivation") for r in rows], ("benign", "malicious"))
        if crossed
        else [None]
    )
    n_rows, cols = _grid(len(measures))
    fig = make_subplots(
        rows=n_rows,
        cols=cols,
        shared_yaxes=True,
        subplot_titles=[humanise(m) for m in measures] if len(measures) > 1 else None,
        horizontal_spacing=0.04,
        vertical_spacing=min(0.12, 0.5 / n_rows),
    )
    # Numeric y positions let the motivations sit side by side instead of on top of each other.
    spread = 0.36
    for i, m in enumerate(measures):
        row, col = divmod(i, cols)
        for j, motivation in enumerate(motivations):
            offset = (j - (len(motivations) - 1) / 2) * spread / max(1, len(motivations) - 1)
            cell = {
                r.get("response_type"): r
                for r in rows
                if r.get("measure") == m and r.get("motivation") == motivation
            }
            present = [t for t in types if t in cell]
            means = [_num(cell[t].get("mean")) for t in present]
            lows = [_num(cell[t].get("ci_low")) for t in present]
            highs = [_num(cell[t].get("ci_high")) for t in present]
            plus, minus = _errors(means, lows, highs)
            colour = OKABE_ITO[j % len(OKABE_ITO)] if crossed else OKABE_ITO[0]
            name = humanise(motivation) if motivation else "All"
            fig.add_trace(
                go.Scatter(
                    x=means,
                    y=[types.index(t) + offset for t in present],
                    mode="markers",
                    name=name,
                    legendgroup=name,
                    showlegend=i == 0 and crossed,
                    marker={
                        "size": 10,
                        "color": colour,
                        "symbol": SYMBOLS[j % len(SYMBOLS)],
                        "line": {"width": 1, "color": TEXT_COLOUR},
                    },
                    error_x={
                        "type": "data",
                        "symmetric": False,
                        "array": plus,
                        "arrayminus": minus,
                        "color": colour,
                        "thickness": 2,
                        "width": 3,
                    },
                    customdata=[
                        [response_type_label(t), _fmt(lo), _fmt(hi), cell[t].get("n")]
                        for t, lo, hi in zip(present, lows, highs, strict=True)
                    ],
                    hovertemplate=(
                        "%{customdata[0]}: %{x:.2f} [%{customdata[1]}, %{customdata[2]}]"
                        f", n = %{{customdata[3]}}<extra>{html.escape(name)}</extra>"
                    ),
                ),
                row=row + 1,
                col=col + 1,
            )
    fig.update_yaxes(
        tickvals=list(range(len(types))),
        ticktext=[response_type_label(t) for t in types],
        range=[len(types) - 0.5, -0.5],
        zeroline=False,
    )
    fig.update_xaxes(range=scale_range(scale_points(report)), autorange=False)
    for col in range(1, cols + 1):
        fig.update_xaxes(title_text="Mean rating", row=n_rows, col=col)
    height = 150 + n_rows * (70 + 42 * len(types))
    return _style(fig, title, "Means with 95% confidence intervals", height)


def gap_reduction_plot(report: dict) -> go.Figure:
    """Share of the baseline-to-reference gap each response type closes, per measure, with CIs.

    0% is "no better than the baseline refusal", 100% "as well perceived as the reference".
    """
    meta = report.get("meta") or {}
    ref_label = response_type_label(meta.get("reference_level") or "full_compliance")
    base_label = response_type_label(meta.get("baseline_level") or "direct_refusal")
    title = f"How much of the gap between {base_label.lower()} and {ref_label.lower()} is closed"
    n_all = claims.report_participants(report)
    # Only the shares the intervals support (claims.gap_status); the table has every row.
    rows = [
        r
        for r in report.get("gap_reduction") or []
        if isinstance(r, dict) and claims.gap_status(r, n_all) == claims.REPORTED
    ]
    measures = _measures(report, rows)
    if not measures:
        return empty_figure(
            title, "No share of the gap can be reported yet (see the headline findings)"
        )
    types = _ordered([r.get("response_type") for r in rows], RESPONSE_TYPES)
    labels = [humanise(m) for m in measures]
    fig = go.Figure()
    for t in types:
        cell = {r.get("measure"): r for r in rows if r.get("response_type") == t}
        values = [_num(cell[m].get("reduction")) if m in cell else None for m in measures]
        lows = [_num(cell[m].get("ci_low")) if m in cell else None for m in measures]
        highs = [_num(cell[m].get("ci_high")) if m in cell else None for m in measures]
        plus, minus = _errors(values, lows, highs)
        fig.add_trace(
            go.Bar(
                x=values,
                y=labels,
                orientation="h",
                name=response_type_label(t),
                marker={
                    "color": RESPONSE_TYPE_COLOURS.get(t, OKABE_ITO[0]),
                    "line": {"width": 1, "color": TEXT_COLOUR},
                },
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": plus,
                    "arrayminus": minus,
                    "color": TEXT_COLOUR,
                    "thickness": 1.5,
                    "width": 3,
                },
                customdata=[[_pct(lo), _pct(hi)] for lo, hi in zip(lows, highs, strict=True)],
                hovertemplate=(
                    "%{y}: %{x:.0%} [%{customdata[0]}, %{customdata[1]}]"
                    f"<extra>{html.escape(response_type_label(t))}</extra>"
                ),
            )
        )
    fig.add_vline(x=0, line={"color": TEXT_COLOUR, "width": 1})
    fig.add_vline(x=1, line={"color": MUTED_COLOUR, "width": 1, "dash": "dot"})
    fig.update_layout(barmode="group", bargap=0.25)
    ends = [_num(r.get(k)) for r in rows for k in ("reduction", "ci_low", "ci_high")]
    ends = [v for v in ends if v is not None]
    low, high = claims.PLAUSIBLE_REDUCTION
    fig.update_xaxes(
        tickformat=".0%",
        title_text=f"Share of the gap closed (100% = {ref_label})",
        range=[max(low, min([-0.25, *ends]) - 0.1), min(high, max([1.25, *ends]) + 0.1)],
        autorange=False,
    )
    fig.update_yaxes(autorange="reversed")
    height = 190 + len(measures) * (14 * len(types) + 18)
    return _style(
        fig,
        title,
        f"0% = as {base_label.lower()}, 100% = as {ref_label.lower()}; bars: bootstrap 95% CIs",
        height,
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def variance_explained_plot(report: dict) -> go.Figure:
    """Eta squared of each factor per measure: which factor matters most."""
    title = "Share of variance explained by each factor"
    rows = [
        r
        for r in report.get("variance_explained") or []
        if isinstance(r, dict) and _num(r.get("eta_squared")) is not None
    ]
    measures = _measures(report, rows)
    if not measures:
        return empty_figure(title)
    factors = _ordered(
        [r.get("factor") for r in rows], ("response_type", "motivation", "alignment")
    )
    labels = [humanise(m) for m in measures]
    fig = go.Figure()
    for j, factor in enumerate(factors):
        cell = {r.get("measure"): r for r in rows if r.get("factor") == factor}
        fig.add_trace(
            go.Bar(
                x=[_num(cell[m].get("eta_squared")) if m in cell else None for m in measures],
                y=labels,
                orientation="h",
                name=humanise(factor),
                marker={
                    "color": OKABE_ITO[j % len(OKABE_ITO)],
                    "line": {"width": 1, "color": TEXT_COLOUR},
                },
                hovertemplate=(
                    f"%{{y}}: η² = %{{x:.3f}}<extra>{html.escape(humanise(factor))}</extra>"
                ),
            )
        )
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_xaxes(title_text="η² (share of variance)", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    height = 190 + len(measures) * (14 * len(factors) + 18)
    return _style(fig, title, "Eta squared from group means", height)


def distribution_plot(report: dict, measure: str) -> go.Figure:
    """How often each scale point was chosen for one measure (share, with counts as labels)."""
    title = f"{humanise(measure)}: distribution of ratings"
    rows = [
        r
        for r in report.get("distributions") or []
        if isinstance(r, dict) and r.get("measure") == measure and r.get("value") is not None
    ]
    if not rows:
        return empty_figure(title)
    rows = sorted(rows, key=lambda r: _num(r.get("value")) or 0)
    counts = [r.get("count") for r in rows]
    fig = go.Figure(
        go.Bar(
            x=[r.get("value") for r in rows],
            y=[_num(r.get("share")) for r in rows],
            text=[str(c) if c is not None else "" for c in counts],
            textposition="outside",
            marker={"color": OKABE_ITO[0]},
            customdata=counts,
            hovertemplate="Rating %{x}: %{y:.1%} (n = %{customdata})<extra></extra>",
            name=humanise(measure),
        )
    )
    points = scale_points(report)
    fig.update_xaxes(title_text="Rating", dtick=1, range=[0.5, points + 0.5], autorange=False)
    fig.update_yaxes(title_text="Share of ratings", tickformat=".0%", rangemode="tozero")
    fig.update_layout(showlegend=False)
    return _style(fig, title, "Bar labels: number of ratings", 360)


def figures_for(report: dict) -> dict[str, go.Figure]:
    """Every figure of the report by stable slug: the main four, then one distribution per measure.

    Slugs and their data tables (see tables.TABLE_SLUGS): coefficients → coefficients,
    interaction → descriptives, gap_reduction → gap_reduction, variance_explained →
    variance_explained, distribution_<measure> → distributions.
    """
    report = report or {}
    figures: dict[str, go.Figure] = {
        "coefficients": coefficient_plot(report),
        "interaction": interaction_plot(report),
        "gap_reduction": gap_reduction_plot(report),
        "variance_explained": variance_explained_plot(report),
    }
    dist_rows = [r for r in report.get("distributions") or [] if isinstance(r, dict)]
    for measure in _measures(report, dist_rows):
        figures[distribution_slug(measure)] = distribution_plot(report, measure)
    return figures


def figure_table_slug(figure_slug: str) -> str:
    """The table slug holding a figure's data (every plot is also a table and a CSV)."""
    if figure_slug == "interaction":
        return "descriptives"
    if figure_slug.startswith(DISTRIBUTION_PREFIX):
        return "distributions"
    return figure_slug


# ----------------------------------------------------------------------------- HTML output


def plotly_js_path() -> Path:
    """The plotly.min.js shipped inside the installed `plotly` package (served, never a CDN)."""
    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def vendor_plotly_js(static_dir: Path) -> Path:
    """Copy the package's plotly.min.js to `<static_dir>/vendor/plotly/plotly.min.js`.

    Only for deployments that cannot add the package folder to STATICFILES_DIRS: the copy
    must then be refreshed whenever plotly is upgraded, which is why it is not committed.
    """
    target = Path(static_dir) / "vendor" / "plotly" / "plotly.min.js"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plotly_js_path(), target)
    return target


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js source (about 4.8 MB) for inlining into standalone files; read once."""
    return get_plotlyjs()


def title_text(fig: go.Figure) -> str:
    title = fig.layout.title.text if fig.layout.title else None
    return re.sub(r"<[^>]+>", "", title or "")


def figure_div(fig: go.Figure, div_id: str | None = None, filename: str | None = None) -> str:
    """HTML for embedding a figure in a page that already loads plotly.min.js once.

    plotly.js is NOT included (`include_plotlyjs=False`); the page loads it from our static
    files before the figures. The modebar stays visible with its camera button, "Download
    plot as a PNG": that is how a researcher gets a PNG of each chart (rendered in the
    browser at 2× scale, named `filename`), so the server needs no kaleido or headless browser.
    """
    config = {
        **PLOT_CONFIG,
        "toImageButtonOptions": {
            "format": "png",
            "filename": filename or slugify(title_text(fig)),
            "scale": 2,
        },
    }
    height = fig.layout.height or 450
    return pio.to_html(
        fig,
        config=config,
        include_plotlyjs=False,
        include_mathjax=False,
        full_html=False,
        default_width="100%",
        default_height=f"{int(height)}px",
        div_id=div_id,
    )


def inline_plotly_script() -> str:
    """One <script> element carrying plotly.js itself: the only copy a standalone file needs."""
    return f'<script type="text/javascript">{plotly_js()}</script>'


def figure_html_document(fig: go.Figure, title: str) -> str:
    """A standalone HTML file of one interactive figure, plotly.js inlined: works offline."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>body{{margin:0;padding:1rem;font-family:{FONT};}}</style>\n"
        f"{inline_plotly_script()}\n</head>\n<body>\n"
        f"{figure_div(fig, filename=slugify(title))}\n</body>\n</html>\n"
    )
