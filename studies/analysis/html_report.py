"""The whole analysis as one offline HTML file, and the parts the results page shows."""

from __future__ import annotations

import html
from statistics import mean
from typing import Any

from studies.analysis.figures import (
    figure_div,
    figure_table_slug,
    figures_for,
    humanise,
    inline_plotly_script,
    response_type_label,
)
from studies.analysis.tables import display_tables
from studies.domain import RESPONSE_TYPES


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value == value else None  # NaN != NaN


def _pct(value: float) -> str:
    return f"{abs(value):.0%}"


def _levels(report: dict) -> tuple[str, str]:
    meta = report.get("meta") or {}
    reference = response_type_label(meta.get("reference_level") or "full_compliance")
    baseline = response_type_label(meta.get("baseline_level") or "direct_refusal")
    return reference.lower(), baseline.lower()


def gap_sentences(report: dict) -> list[str]:
    """One sentence per measure × response type with a gap reduction, e.g.

    "Helpfulness: partial compliance closes 61% (95% CI 45%–78%) of the gap between direct
    refusal (2.10) and full compliance (5.60)."
    """
    reference, baseline = _levels(report)
    sentences = []
    for row in report.get("gap_reduction") or []:
        value = _num(row.get("reduction"))
        if value is None:
            continue
        low, high = _num(row.get("ci_low")), _num(row.get("ci_high"))
        ci = f" (95% CI {low:.0%}–{high:.0%})" if low is not None and high is not None else ""
        verb = "closes" if value >= 0 else "widens by"
        base_mean, ref_mean = _num(row.get("baseline_mean")), _num(row.get("reference_mean"))
        base_txt = f" ({base_mean:.2f})" if base_mean is not None else ""
        ref_txt = f" ({ref_mean:.2f})" if ref_mean is not None else ""
        sentences.append(
            f"{humanise(row.get('measure'))}: "
            f"{response_type_label(row.get('response_type')).lower()} {verb} {_pct(value)}{ci} "
            f"of the gap between {baseline}{base_txt} and {reference}{ref_txt}."
        )
    return sentences


def headline_sentences(report: dict) -> list[str]:
    """The findings in words: per response type, the average share of the gap it closes,
    then which factor explains the most variance. E.g.

    "Partial compliance closes 61% of the gap between direct refusal and full compliance on
    average across 3 measures (from 45% on frustration to 78% on helpfulness)."
    """
    reference, baseline = _levels(report)
    rows = [r for r in report.get("gap_reduction") or [] if _num(r.get("reduction")) is not None]
    types = list(dict.fromkeys(r.get("response_type") for r in rows))
    types = [t for t in RESPONSE_TYPES if t in types] + [
        t for t in types if t not in RESPONSE_TYPES
    ]
    sentences = []
    for rt in types:
        cells = [r for r in rows if r.get("response_type") == rt]
        values = [_num(r["reduction"]) for r in cells]
        average = mean(values)
        label = response_type_label(rt)
        gap = f"the gap between {baseline} and {reference}"
        if len(cells) == 1:
            (only,) = cells
            measure = humanise(only.get("measure")).lower()
            if average >= 0:
                sentences.append(f"{label} closes {_pct(average)} of {gap} on {measure}.")
            else:
                sentences.append(
                    f"{label} is rated worse than {baseline} on {measure}: it widens {gap} "
                    f"by {_pct(average)}."
                )
            continue
        low = min(cells, key=lambda r: r["reduction"])
        high = max(cells, key=lambda r: r["reduction"])
        spread = (
            f"from {low['reduction']:.0%} on {humanise(low.get('measure')).lower()} "
            f"to {high['reduction']:.0%} on {humanise(high.get('measure')).lower()}"
        )
        if average >= 0:
            sentences.append(
                f"{label} closes {_pct(average)} of {gap} on average across "
                f"{len(cells)} measures ({spread})."
            )
        else:
            sentences.append(
                f"{label} is rated worse than {baseline} on average across {len(cells)} "
                f"measures: it widens {gap} by {_pct(average)} ({spread})."
            )
    sentences.extend(_variance_sentences(report))
    return sentences


def _variance_sentences(report: dict) -> list[str]:
    """Which factor explains the most variance on how many measures ("what matters most")."""
    rows = [
        r for r in report.get("variance_explained") or [] if _num(r.get("eta_squared")) is not None
    ]
    by_measure: dict[str, list[dict]] = {}
    for row in rows:
        by_measure.setdefault(row.get("measure"), []).append(row)
    if not by_measure:
        return []
    winners = [
        max(cells, key=lambda r: r["eta_squared"])["factor"] for cells in by_measure.values()
    ]
    top = max(dict.fromkeys(winners), key=winners.count)
    factor_means = {
        f: mean(r["eta_squared"] for r in rows if r.get("factor") == f)
        for f in dict.fromkeys(r.get("factor") for r in rows)
    }
    others = ", ".join(
        f"{humanise(f).lower()} {v:.2f}" for f, v in factor_means.items() if f != top
    )
    return [
        f"{humanise(top)} explains the most variance on {winners.count(top)} of "
        f"{len(by_measure)} measures (mean η² {factor_means[top]:.2f}"
        + (f"; {others}" if others else "")
        + ")."
    ]


def results_page_parts(report: dict) -> dict[str, Any]:
    """What the results page renders, from the report alone (the view adds study, URLs, forms).

    figures: slug → embeddable div (plain str: mark it safe in the view); tables: slug →
    display table (see tables.display_tables); headlines, gap_sentences, warnings: lists of str;
    figure_tables: figure slug → slug of the table holding its data.
    """
    report = report or {}
    figures = figures_for(report)
    return {
        "figures": {
            slug: figure_div(fig, div_id=f"plot-{slug}", filename=slug)
            for slug, fig in figures.items()
        },
        "figure_tables": {slug: figure_table_slug(slug) for slug in figures},
        "tables": display_tables(report),
        "headlines": headline_sentences(report),
        "gap_sentences": gap_sentences(report),
        "warnings": list((report.get("meta") or {}).get("warnings") or []),
    }


_CSS = """
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --panel:#f6f8fa; --warn:#b42318; }
* { box-sizing: border-box; }
body { margin:0; color:var(--fg);
  font:1rem/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
main { max-width:72rem; margin:0 auto; padding:1rem; }
h1 { font-size:1.6rem; } h2 { font-size:1.25rem; margin-top:2rem; } h3 { font-size:1.05rem; }
.warnings { border:2px solid var(--warn); border-radius:.5rem; padding:.5rem 1rem;
  background:#fef3f2; }
.warnings h2 { color:var(--warn); margin:.25rem 0; }
dl.meta { display:grid; grid-template-columns:minmax(0,12rem) 1fr; gap:.25rem 1rem; }
dl.meta dt { font-weight:600; } dl.meta dd { margin:0; word-break:break-word; }
.headline li { margin:.25rem 0; }
figure { margin:1.5rem 0; border:1px solid var(--line); border-radius:.5rem; padding:.5rem;
  overflow-x:auto; }
/* Phones scroll a chart sideways rather than squeezing its panels into illegibility. */
.plotly-graph-div { min-width:40rem; }
figcaption { color:var(--muted); font-size:.9rem; }
.table-wrap { overflow-x:auto; margin:1rem 0 2rem; }
table { border-collapse:collapse; min-width:100%; font-size:.92rem; }
caption { text-align:left; font-weight:600; padding:.25rem 0; }
caption span { display:block; font-weight:400; color:var(--muted); font-size:.9rem; }
th, td { text-align:left; padding:.3rem .55rem; border-bottom:1px solid var(--line);
  vertical-align:top; }
thead th { background:var(--panel); }
.num { text-align:right; font-variant-numeric:tabular-nums; }
.muted { color:var(--muted); }
"""


def _table_html(table: dict) -> str:
    slug = html.escape(table["slug"])
    num = ' class="num"'
    head = "".join(
        f'<th scope="col"{num if c["numeric"] else ""}>{html.escape(c["label"])}</th>'
        for c in table["columns"]
    )
    if table["rows"]:
        body = "".join(
            "<tr>"
            + "".join(
                f"<td{num if cell['numeric'] else ''}>{html.escape(cell['text'])}</td>"
                for cell in row
            )
            + "</tr>"
            for row in table["rows"]
        )
    else:
        body = f'<tr><td colspan="{max(1, len(table["columns"]))}" class="muted">No rows.</td></tr>'
    return (
        f'<div class="table-wrap" id="table-{slug}">'
        f"<table><caption>{html.escape(table['title'])}"
        f"<span>{html.escape(table['description'])}</span></caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _meta_html(meta: dict) -> str:
    timings = meta.get("timings") or {}
    total = _num(timings.get("total_s"))
    items = [
        ("Included", meta.get("inclusion")),
        ("Ratings", meta.get("n_ratings")),
        ("Participants", meta.get("n_participants")),
        ("Queries", meta.get("n_queries")),
        ("Measures", ", ".join(humanise(m) for m in meta.get("measures") or [])),
        ("Factors", ", ".join(humanise(f) for f in meta.get("factors") or [])),
        (
            "Reference level",
            response_type_label(meta.get("reference_level"))
            if meta.get("reference_level")
            else None,
        ),
        (
            "Baseline refusal",
            response_type_label(meta.get("baseline_level")) if meta.get("baseline_level") else None,
        ),
        ("Analysis code version", meta.get("code_version")),
        ("Inputs hash", meta.get("inputs_hash")),
        ("Computed in", f"{total:.1f} s" if total is not None else None),
    ]
    rows = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(str(v))}</dd>"
        for k, v in items
        if v not in (None, "")
    )
    return f'<dl class="meta">{rows}</dl>'


def render_html_report(report: dict, title: str) -> str:
    """The whole analysis as ONE offline HTML file: meta, warnings, headline findings, every
    figure (interactive) and every table. plotly.js is inlined exactly once in <head>; nothing
    is fetched from any other host, so it opens on an air-gapped machine and passes privacy
    review. Output is deterministic for a given report (fixed div ids, no timestamp).
    """
    report = report or {}
    meta = report.get("meta") or {}
    parts = results_page_parts(report)
    esc_title = html.escape(title)

    warnings = parts["warnings"]
    warnings_html = ""
    if warnings:
        items = "".join(f"<li>{html.escape(str(w))}</li>" for w in warnings)
        warnings_html = (
            '<section class="warnings" aria-labelledby="warnings-h">'
            f'<h2 id="warnings-h">Warnings ({len(warnings)})</h2><ul>{items}</ul></section>'
        )
    headlines = parts["headlines"]
    headline_html = (
        '<ul class="headline">' + "".join(f"<li>{html.escape(s)}</li>" for s in headlines) + "</ul>"
        if headlines
        else '<p class="muted">No gap reductions could be estimated.</p>'
    )
    details = parts["gap_sentences"]
    if details:
        headline_html += (
            "<details><summary>Every measure</summary><ul>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in details)
            + "</ul></details>"
        )
    figures_html = "".join(
        f'<figure id="figure-{html.escape(slug)}">{div}<figcaption>Data: '
        f'<a href="#table-{html.escape(parts["figure_tables"][slug])}">'
        f"{html.escape(parts['tables'][parts['figure_tables'][slug]]['title'])}</a>. "
        "Use the camera icon above the chart to save it as PNG.</figcaption></figure>"
        for slug, div in parts["figures"].items()
    )
    tables_html = "".join(_table_html(t) for t in parts["tables"].values())
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc_title}</title>\n<style>{_CSS}</style>\n"
        f"{inline_plotly_script()}\n</head>\n<body>\n<main>\n"
        f"<h1>{esc_title}</h1>\n{warnings_html}\n"
        f'<section aria-labelledby="about-h"><h2 id="about-h">About this analysis</h2>'
        f"{_meta_html(meta)}</section>\n"
        f'<section aria-labelledby="findings-h"><h2 id="findings-h">Headline findings</h2>'
        f"{headline_html}</section>\n"
        f'<section aria-labelledby="figures-h"><h2 id="figures-h">Figures</h2>'
        f"{figures_html}</section>\n"
        f'<section aria-labelledby="tables-h"><h2 id="tables-h">Tables</h2>'
        f"{tables_html}</section>\n</main>\n</body>\n</html>\n"
    )
