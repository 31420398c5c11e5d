"""The whole analysis as one offline HTML file, and the parts the results page shows."""

from __future__ import annotations

import html
import json
import re
from statistics import mean
from typing import Any

import plotly.io as pio

from studies.analysis import claims
from studies.analysis.figures import (
    PLOT_CONFIG,
    figure_div,
    figure_table_slug,
    figures_for,
    humanise,
    inline_plotly_script,
    response_type_label,
    title_text,
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


def _pct_signed(value: float) -> str:
    return f"{value:.0%}".replace("-", "−")


def _ci_pct(row: dict) -> str:
    return f"95% CI {_pct_signed(row['ci_low'])} to {_pct_signed(row['ci_high'])}"


# The rule every headline follows, in the reader's words (the page and the HTML report show it).
REPORTING_RULE = (
    f"A share of the gap is reported only with at least {claims.MIN_PARTICIPANTS} participants, "
    "where the gap itself has a 95% confidence interval that excludes 0, and where the share's "
    f"own 95% interval lies within {claims.PLAUSIBLE_REDUCTION[0]:.0%} to "
    f"{claims.PLAUSIBLE_REDUCTION[1]:.0%}; a difference is called an effect only when its 95% "
    "interval excludes 0."
).replace("-", "−")


def not_enough_data_sentence(report: dict) -> str | None:
    """The one headline when too few participants are in for any share of a gap, else None."""
    n = claims.report_participants(report)
    if n >= claims.MIN_PARTICIPANTS:
        return None
    people = "participant is" if n == 1 else "participants are"
    return (
        f"Not enough data yet: {n} {people} included; gap reductions are reported from "
        f"{claims.MIN_PARTICIPANTS} participants on ({claims.participants_needed(n)} more "
        "needed), and only where the gap they are a share of is clearly non-zero."
    )


def gap_sentences(report: dict) -> list[str]:
    """One sentence per measure × response type, worded by claims.gap_status, e.g.

    "Helpfulness: partial compliance closes 61% (95% CI 45% to 78%) of the gap between direct
    refusal (2.10) and full compliance (5.60)."

    A share is printed only when the intervals support it; otherwise the sentence says why
    not (too few participants, no clear gap, too uncertain). Empty while too few participants
    are in overall (the headline says so once).
    """
    if not_enough_data_sentence(report) is not None:
        return []
    reference, baseline = _levels(report)
    n_all = claims.report_participants(report)
    sentences = []
    for row in report.get("gap_reduction") or []:
        status = claims.gap_status(row, n_all)
        measure = humanise(row.get("measure"))
        label = response_type_label(row.get("response_type")).lower()
        if status == claims.REPORTED:
            value = row["reduction"]
            base_mean, ref_mean = _num(row.get("baseline_mean")), _num(row.get("reference_mean"))
            base_txt = f" ({base_mean:.2f})" if base_mean is not None else ""
            ref_txt = f" ({ref_mean:.2f})" if ref_mean is not None else ""
            between = f"the gap between {baseline}{base_txt} and {reference}{ref_txt}"
            if claims.excludes_zero(row.get("ci_low"), row.get("ci_high")):
                verb = "closes" if value >= 0 else "widens"
                amount = f"{_pct(value)} ({_ci_pct(row)})"
                if value >= 0:
                    sentences.append(f"{measure}: {label} closes {amount} of {between}.")
                else:
                    sentences.append(f"{measure}: {label} {verb} {between} by {amount}.")
            else:
                sentences.append(
                    f"{measure}: {label} is not clearly different from {baseline}: "
                    f"{_pct_signed(value)} of {between} ({_ci_pct(row)}, which includes 0%)."
                )
        elif status == claims.TOO_FEW:
            n = _num(row.get("n_participants"))
            sentences.append(
                f"{measure}, {label}: not enough data yet ({int(n or 0)} participants rated it; "
                f"{claims.MIN_PARTICIPANTS} needed)."
            )
        elif status == claims.NO_CLEAR_GAP:
            gap = _num(row.get("gap"))
            low, high = _num(row.get("gap_ci_low")), _num(row.get("gap_ci_high"))
            interval = (
                f" ({gap:.2f}, 95% CI {low:.2f} to {high:.2f})"
                if None not in (gap, low, high)
                else ""
            )
            sentences.append(
                f"{measure}, {label}: no share reported: the gap between {baseline} and "
                f"{reference} is not clearly different from zero{interval}."
            )
        elif status == claims.TOO_UNCERTAIN:
            sentences.append(
                f"{measure}, {label}: no share reported yet: its 95% interval is too wide "
                "(it reaches outside −100% to 200%)."
            )
        else:
            sentences.append(f"{measure}, {label}: no gap reduction could be estimated.")
    return sentences


def headline_sentences(report: dict) -> list[str]:
    """The findings in words, only as far as the intervals support them: per response type,
    the average share of the gap it clearly closes (or widens), then which factor explains
    the most variance, when one clearly does. E.g.

    "Partial compliance closes 61% of the gap between direct refusal and full compliance on
    average across the 3 measures where its difference from direct refusal is clear (from
    45% on frustration to 78% on helpfulness)."

    With too few participants the one sentence is "Not enough data yet: …" with the counts.
    """
    too_few = not_enough_data_sentence(report)
    if too_few is not None:
        return [too_few]
    reference, baseline = _levels(report)
    n_all = claims.report_participants(report)
    all_rows = [r for r in report.get("gap_reduction") or [] if r.get("response_type")]
    types = list(dict.fromkeys(r.get("response_type") for r in all_rows))
    types = [t for t in RESPONSE_TYPES if t in types] + [
        t for t in types if t not in RESPONSE_TYPES
    ]
    gap = f"the gap between {baseline} and {reference}"
    sentences = []
    for rt in types:
        label = response_type_label(rt)
        rows = [r for r in all_rows if r.get("response_type") == rt]
        reported = [r for r in rows if claims.gap_status(r, n_all) == claims.REPORTED]
        clear = [r for r in reported if claims.excludes_zero(r.get("ci_low"), r.get("ci_high"))]
        if not clear:
            if reported:
                sentences.append(
                    f"{label} is not clearly different from {baseline} on any of the "
                    f"{len(reported)} measure{'s' if len(reported) != 1 else ''} where a share "
                    f"of {gap} can be reported (every 95% CI includes 0%)."
                )
            else:
                sentences.append(
                    f"{label}: no share of {gap} can be reported yet on any of the "
                    f"{len(rows)} measure{'s' if len(rows) != 1 else ''}: the gap is not "
                    "clearly non-zero there, or the estimate is still too uncertain."
                )
            continue
        average = mean(r["reduction"] for r in clear)
        where = (
            f"on {humanise(clear[0].get('measure')).lower()}"
            if len(clear) == 1
            else f"on average across the {len(clear)} measures where its difference from "
            f"{baseline} is clear"
        )
        if len(clear) > 1:
            low = min(clear, key=lambda r: r["reduction"])
            high = max(clear, key=lambda r: r["reduction"])
            where += (
                f" (from {_pct_signed(low['reduction'])} on "
                f"{humanise(low.get('measure')).lower()} to {_pct_signed(high['reduction'])} on "
                f"{humanise(high.get('measure')).lower()})"
            )
        if average >= 0:
            sentence = f"{label} closes {_pct(average)} of {gap} {where}."
        else:
            sentence = (
                f"{label} is rated worse than {baseline}: it widens {gap} by {_pct(average)} "
                f"{where}."
            )
        rest = len(rows) - len(clear)
        if rest:
            sentence += (
                f" On {rest} other measure{'s' if rest != 1 else ''} no clear share can be "
                "reported."
            )
        sentences.append(sentence)
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
    # Some factor always has the largest eta squared, noise included: it is named only when
    # its share is at least small (claims.MIN_ETA_SQUARED) and its model terms are clear.
    if factor_means[top] < claims.MIN_ETA_SQUARED or not claims.factor_supported(report, top):
        return [
            "No factor clearly explains the variance yet (largest mean η² "
            f"{max(factor_means.values()):.3f}; a factor is named from η² "
            f"{claims.MIN_ETA_SQUARED} on, with a model term whose 95% CI excludes 0)."
        ]
    others = ", ".join(
        f"{humanise(f).lower()} {v:.2f}" for f, v in factor_means.items() if f != top
    )
    return [
        f"{humanise(top)} explains the most variance on {winners.count(top)} of "
        f"{len(by_measure)} measures (mean η² {factor_means[top]:.2f}"
        + (f"; {others}" if others else "")
        + ")."
    ]


# Report parts by the name _Run gives them (report.py), as a reader would call them.
PART_LABELS = {
    "composites": "composite measures",
    "descriptives": "means and confidence intervals",
    "distributions": "rating distributions",
    "mixed_models": "mixed models",
    "gap_reduction": "gap reductions",
    "variance_explained": "variance explained",
    "cronbach_alpha": "Cronbach's alpha",
    "krippendorff_alpha": "Krippendorff's alpha",
    "attention_checks": "attention checks",
}
# Reports stored before failed_parts existed put a crash into the warnings as
# "<part> failed: <ExceptionType>: <message>"; those lines are shown as a part not computed.
_OLD_CRASH = re.compile(r"^(\w+) failed: \w+(Error|Exception|Warning|Interrupt)\b")


def _failed_and_warnings(meta: dict) -> tuple[list[str], list[str]]:
    failed = list(meta.get("failed_parts") or [])
    warnings = []
    for warning in meta.get("warnings") or []:
        match = _OLD_CRASH.match(str(warning))
        if match:
            failed.append(match[1])
        else:
            warnings.append(str(warning))
    return list(dict.fromkeys(failed)), warnings


def not_computed_notes(report: dict) -> list[str]:
    """One neutral line per report part that crashed (its error is in the server's log)."""
    failed, _ = _failed_and_warnings((report or {}).get("meta") or {})
    notes = []
    for name in failed:
        part, _, measure = name.partition(":")
        label = PART_LABELS.get(part, humanise(part).lower())
        if measure:
            label = f"{label} ({humanise(measure).lower()})"
        notes.append(f"This part could not be computed: {label}.")
    return notes


def figure_specs(report: dict) -> dict[str, dict]:
    """slug → what Plotly.newPlot takes ({id, data, layout, config}), as JSON-ready data: the
    results page draws its figures from this one by one (static/js/results.js)."""
    specs = {}
    for slug, fig in figures_for(report).items():
        spec = json.loads(pio.to_json(fig, validate=False))
        specs[slug] = {
            "id": f"plot-{slug}",
            "data": spec.get("data", []),
            "layout": spec.get("layout", {}),
            "config": {
                **PLOT_CONFIG,
                "toImageButtonOptions": {"format": "png", "filename": slug, "scale": 2},
            },
            "height": int(fig.layout.height or 450),
            "title": title_text(fig),
        }
    return specs


def results_page_parts(report: dict) -> dict[str, Any]:
    """What the results page renders, from the report alone (the view adds study, URLs, forms).

    figures: slug → figure spec (see figure_specs; the page draws them from JSON); tables:
    slug → display table (see tables.display_tables); headlines, gap_sentences, warnings,
    not_computed: lists of str; figure_tables: figure slug → slug of the table holding its data.
    """
    report = report or {}
    figures = figure_specs(report)
    _, warnings = _failed_and_warnings(report.get("meta") or {})
    return {
        "figures": figures,
        "figure_tables": {slug: figure_table_slug(slug) for slug in figures},
        "tables": display_tables(report),
        "headlines": headline_sentences(report),
        "gap_sentences": gap_sentences(report),
        "warnings": warnings,
        "not_computed": not_computed_notes(report),
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
    if parts["not_computed"]:
        warnings_html += (
            '<section class="not-computed" aria-label="Parts not computed"><ul>'
            + "".join(f"<li>{html.escape(n)}</li>" for n in parts["not_computed"])
            + "</ul></section>"
        )
    headlines = parts["headlines"]
    headline_html = (
        '<ul class="headline">' + "".join(f"<li>{html.escape(s)}</li>" for s in headlines) + "</ul>"
        if headlines
        else '<p class="muted">No gap reductions could be estimated.</p>'
    )
    headline_html += f'<p class="muted">{html.escape(REPORTING_RULE)}</p>'
    details = parts["gap_sentences"]
    if details:
        headline_html += (
            "<details><summary>Every measure</summary><ul>"
            + "".join(f"<li>{html.escape(s)}</li>" for s in details)
            + "</ul></details>"
        )
    figures = figures_for(report)
    figures_html = "".join(
        f'<figure id="figure-{html.escape(slug)}">'
        f"{figure_div(fig, div_id=f'plot-{slug}', filename=slug)}<figcaption>Data: "
        f'<a href="#table-{html.escape(parts["figure_tables"][slug])}">'
        f"{html.escape(parts['tables'][parts['figure_tables'][slug]]['title'])}</a>. "
        "Use the camera icon above the chart to save it as PNG.</figcaption></figure>"
        for slug, fig in figures.items()
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
