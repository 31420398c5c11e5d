"""Figures, tables and the offline HTML report, from a hand-built report dict (no database)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from studies.analysis.figures import (
    coefficient_plot,
    distribution_plot,
    figure_div,
    figure_html_document,
    figures_for,
    gap_reduction_plot,
    interaction_plot,
    plotly_js,
    plotly_js_path,
    vendor_plotly_js,
)
from studies.analysis.html_report import (
    REPORTING_RULE,
    gap_sentences,
    headline_sentences,
    render_html_report,
    results_page_parts,
)
from studies.analysis.tables import (
    TABLE_COLUMNS,
    TABLE_SLUGS,
    display_tables,
    report_tables,
    table_csv,
)
from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES

MEASURES = ["helpfulness", "appropriateness", "frustration"]
MOTIVATIONS = ["benign", "malicious"]
# Mean rating per response type (helpfulness-like); frustration runs the other way.
TYPE_MEANS = {
    "direct_refusal": 2.0,
    "explanation_based": 2.6,
    "redirection": 3.1,
    "partial_compliance": 4.2,
    "full_compliance": 5.5,
}
WARNING = "Mixed model for frustration did not converge; fallback used."


def _mean(measure: str, rt: str, motivation: str | None = None) -> float:
    value = TYPE_MEANS[rt] - (0.2 if motivation == "malicious" else 0.0)
    return 8 - value if measure == "frustration" else value


def example_report() -> dict:
    """A realistic report following studies/analysis/REPORT_FORMAT.md."""
    descriptives = []
    for m in MEASURES:
        for rt in RESPONSE_TYPES:
            mean = _mean(m, rt)
            descriptives.append(
                {
                    "measure": m,
                    "grouping": "response_type",
                    "response_type": rt,
                    "motivation": None,
                    "alignment": None,
                    "n": 192,
                    "mean": mean,
                    "sd": 1.4,
                    "ci_low": mean - 0.2,
                    "ci_high": mean + 0.2,
                }
            )
            for mot in MOTIVATIONS:
                mean = _mean(m, rt, mot)
                descriptives.append(
                    {
                        "measure": m,
                        "grouping": "response_type×motivation",
                        "response_type": rt,
                        "motivation": mot,
                        "alignment": None,
                        "n": 96,
                        "mean": mean,
                        "sd": 1.5,
                        "ci_low": mean - 0.3,
                        "ci_high": mean + 0.3,
                    }
                )
        for mot in MOTIVATIONS:
            descriptives.append(
                {
                    "measure": m,
                    "grouping": "motivation",
                    "response_type": None,
                    "motivation": mot,
                    "alignment": None,
                    "n": 480,
                    "mean": 3.5,
                    "sd": 1.8,
                    "ci_low": 3.3,
                    "ci_high": 3.7,
                }
            )
    models = []
    for m in MEASURES:
        sign = -1 if m == "frustration" else 1
        coefficients = [
            {
                "term": "Intercept",
                "response_type": None,
                "estimate": _mean(m, "full_compliance"),
                "se": 0.1,
                "ci_low": _mean(m, "full_compliance") - 0.2,
                "ci_high": _mean(m, "full_compliance") + 0.2,
                "p": 0.0,
                "p_holm": 0.0,
                "stars": "***",
            }
        ]
        for i, rt in enumerate(RESPONSE_TYPES[:-1]):
            est = sign * (TYPE_MEANS[rt] - TYPE_MEANS["full_compliance"])
            half = 0.15 + 0.05 * i  # different widths so the test can tell them apart
            stars = "*" if rt == "partial_compliance" and m == "frustration" else "***"
            coefficients.append(
                {
                    "term": f"response_type[{rt}]",
                    "response_type": rt,
                    "estimate": est,
                    "se": half / 1.96,
                    "ci_low": est - half,
                    "ci_high": est + half,
                    "p": 0.0001,
                    "p_holm": 0.0004,
                    "stars": stars,
                }
            )
            coefficients.append(
                {
                    "term": f"response_type[{rt}]:motivation[malicious]",
                    "response_type": rt,
                    "estimate": 0.05,
                    "se": 0.1,
                    "ci_low": -0.15,
                    "ci_high": 0.25,
                    "p": 0.6,
                    "p_holm": 1.0,
                    "stars": "",
                }
            )
        coefficients.append(
            {
                "term": "motivation[malicious]",
                "response_type": None,
                "estimate": -0.2,
                "se": 0.1,
                "ci_low": -0.4,
                "ci_high": 0.0,
                "p": 0.05,
                "p_holm": 0.3,
                "stars": "",
            }
        )
        converged = m != "frustration"
        models.append(
            {
                "measure": m,
                "formula": "value ~ C(response_type, Treatment('full_compliance')) * motivation"
                " + (1|participant_id) + (1|query_id)",
                "method": "crossed random intercepts (statsmodels MixedLM, REML)"
                if converged
                else "fallback: OLS with cluster-robust SEs by participant",
                "converged": converged,
                "warning": None if converged else WARNING,
                "n_obs": 3840,
                "n_participants": 480,
                "n_queries": 120,
                "variance_components": {"participant": 0.31, "query": 0.12, "residual": 1.4},
                "coefficients": coefficients,
            }
        )
    gap = []
    for m in MEASURES:
        for rt, reduction in (
            ("explanation_based", 0.17),
            ("redirection", 0.31),
            ("partial_compliance", 0.61),
        ):
            gap.append(
                {
                    "measure": m,
                    "response_type": rt,
                    "reference_mean": _mean(m, "full_compliance"),
                    "baseline_mean": _mean(m, "direct_refusal"),
                    "type_mean": _mean(m, rt),
                    "reduction": reduction + (0.1 if m == "helpfulness" else 0.0),
                    "ci_low": reduction - 0.1,
                    "ci_high": reduction + 0.15,
                    "bootstrap_reps": 1000,
                    "gap": _mean(m, "full_compliance") - _mean(m, "direct_refusal"),
                    "gap_ci_low": _mean(m, "full_compliance") - _mean(m, "direct_refusal") - 0.5,
                    "gap_ci_high": _mean(m, "full_compliance") - _mean(m, "direct_refusal") + 0.5,
                    "n_participants": 480,
                }
            )
    distributions = [
        {"measure": m, "value": v, "count": c, "share": c / 3840}
        for m in MEASURES
        for v, c in zip(range(1, 8), (400, 520, 610, 700, 640, 560, 410), strict=True)
    ]
    return {
        "meta": {
            "code_version": "1",
            "inputs_hash": "ab" * 32,
            "n_ratings": 11520,
            "n_participants": 480,
            "n_queries": 120,
            "measures": MEASURES,
            "factors": ["response_type", "motivation", "alignment"],
            "reference_level": "full_compliance",
            "baseline_level": "direct_refusal",
            "inclusion": "completed participants, not excluded (participant_status in completed)",
            "timings": {"descriptives_s": 0.1, "mixed_models_s": 2.5, "total_s": 3.2},
            "warnings": [WARNING, "Response type 'redirection' has only 12 ratings of alignment."],
        },
        "descriptives": descriptives,
        "distributions": distributions,
        "mixed_models": models,
        "gap_reduction": gap,
        "variance_explained": [
            {"measure": m, "factor": f, "eta_squared": e}
            for m in MEASURES
            for f, e in (("response_type", 0.32), ("motivation", 0.01), ("alignment", 0.04))
        ],
        "reliability": {
            "cronbach_alpha": [
                {
                    "construct": "affect",
                    "items": ["helpfulness", "frustration"],
                    "alpha": 0.82,
                    "n": 480,
                }
            ],
            "krippendorff_alpha": [
                {"measure": "helpfulness", "alpha": 0.41, "n_units": 120, "level": "ordinal"}
            ],
            "attention_checks": [{"check": "attention_1", "n": 500, "pass_rate": 0.96}],
        },
        "composites": [
            {
                "name": "affect",
                "items": ["helpfulness", "frustration"],
                "reverse_coded": ["frustration"],
            }
        ],
    }


@pytest.fixture(scope="module")
def report() -> dict:
    return example_report()


EMPTY_REPORT: dict = {
    "meta": {"measures": [], "warnings": [], "factors": []},
    "descriptives": [],
    "distributions": [],
    "mixed_models": [],
    "gap_reduction": [],
    "variance_explained": [],
    "reliability": {"cronbach_alpha": [], "krippendorff_alpha": [], "attention_checks": []},
    "composites": [],
}


def _without_plotly(text: str) -> str:
    """The document minus the one inlined copy of plotly.js (whose source mentions map-tile
    CDNs it would fetch only for geo charts, which we never draw)."""
    assert text.count(plotly_js()) == 1
    return text.replace(plotly_js(), "")


def _assert_no_external_reference(text: str) -> None:
    rest = _without_plotly(text)
    assert "cdn" not in rest.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", rest, re.I)
    assert "<link" not in rest.lower()
    assert not re.search(r"<script[^>]*\ssrc=", rest, re.I)


# ----------------------------------------------------------------------------- tables


def test_tables_cover_every_section(report):
    tables = report_tables(report)
    assert tuple(tables) == TABLE_SLUGS
    assert {
        "descriptives",
        "distributions",
        "coefficients",
        "models",
        "variance_components",
        "gap_reduction",
        "variance_explained",
        "cronbach_alpha",
        "krippendorff_alpha",
        "attention_checks",
    } <= set(tables)
    assert len(tables["descriptives"]) == len(report["descriptives"])
    n_coefs = sum(len(m["coefficients"]) for m in report["mixed_models"])
    assert len(tables["coefficients"]) == n_coefs
    assert {r["measure"] for r in tables["coefficients"]} == set(MEASURES)
    assert [r["converged"] for r in tables["models"]] == [True, True, False]
    assert tables["variance_components"][0] == {
        "measure": "helpfulness",
        "participant": 0.31,
        "query": 0.12,
        "residual": 1.4,
    }
    assert tables["cronbach_alpha"][0]["items"] == "helpfulness; frustration"
    for slug, rows in tables.items():
        for row in rows:  # same keys in the same order: a template reads headers off row 0
            assert list(row) == list(rows[0]), slug


def test_csv_round_trips(report):
    for slug, rows in report_tables(report).items():
        text = table_csv(rows)
        parsed = list(csv.DictReader(io.StringIO(text)))
        assert len(parsed) == len(rows), slug
        for row, back in zip(rows, parsed, strict=True):
            assert list(back) == list(row)
            for key, value in row.items():
                if value is None:
                    assert back[key] == ""
                elif isinstance(value, float):
                    assert float(back[key]) == value
                else:
                    assert back[key] == str(value)


def test_csv_of_an_empty_table_still_has_a_header():
    assert table_csv([]) == ""
    header = table_csv([], columns=TABLE_COLUMNS["gap_reduction"]).strip()
    assert header.split(",") == list(TABLE_COLUMNS["gap_reduction"])


def test_display_tables_are_formatted_for_people(report):
    tables = display_tables(report)
    coef = tables["coefficients"]
    labels = [c["label"] for c in coef["columns"]]
    assert "p (Holm)" in labels and "95% CI low" in labels
    texts = {cell["text"] for row in coef["rows"] for cell in row}
    assert "Direct refusal" in texts and "<0.001" in texts
    assert all(len(row) == len(coef["columns"]) for row in coef["rows"])
    estimate = next(c for c in coef["columns"] if c["key"] == "estimate")
    assert estimate["numeric"]
    assert display_tables(EMPTY_REPORT)["descriptives"]["rows"] == []


def test_every_figure_has_its_data_in_a_table(report):
    parts = results_page_parts(report)
    assert set(parts["figure_tables"].values()) <= set(parts["tables"])


# ----------------------------------------------------------------------------- figures


def test_coefficient_plot_one_panel_per_measure_with_ci_error_bars_and_stars(report):
    fig = coefficient_plot(report)
    assert len(fig.data) == len(MEASURES)
    assert len({(t.xaxis, t.yaxis) for t in fig.data}) == len(MEASURES)
    titles = [a.text for a in fig.layout.annotations]
    assert titles[: len(MEASURES)] == ["Helpfulness", "Appropriateness", "Frustration"]
    for trace, model in zip(fig.data, report["mixed_models"], strict=True):
        mains = [c for c in model["coefficients"] if c["response_type"] and ":" not in c["term"]]
        assert list(trace.y) == [RESPONSE_TYPE_LABELS[c["response_type"]] for c in mains]
        assert list(trace.x) == pytest.approx([c["estimate"] for c in mains])
        widths = [p + m for p, m in zip(trace.error_x.array, trace.error_x.arrayminus, strict=True)]
        assert widths == pytest.approx([c["ci_high"] - c["ci_low"] for c in mains])
        assert list(trace.error_x.array) == pytest.approx(
            [c["ci_high"] - c["estimate"] for c in mains]
        )
        assert list(trace.text) == [c["stars"] for c in mains]
    assert "*" in fig.data[2].text and "***" in fig.data[0].text
    zero_lines = [s for s in fig.layout.shapes if s.x0 == 0 and s.x1 == 0]
    assert len(zero_lines) == len(MEASURES)
    # The reference level is not plotted against itself.
    assert all("Full compliance" not in t.y for t in fig.data)


def test_interaction_plot_means_by_type_and_motivation(report):
    fig = interaction_plot(report)
    assert len(fig.data) == len(MEASURES) * len(MOTIVATIONS)
    assert {t.name for t in fig.data} == {"Benign", "Malicious"}
    assert len({t.marker.color for t in fig.data}) == 2
    assert len({t.marker.symbol for t in fig.data}) == 2  # not colour alone
    one = interaction_plot(report, "helpfulness")
    assert len(one.data) == 2
    benign = one.data[0]
    expected = [_mean("helpfulness", rt, "benign") for rt in RESPONSE_TYPES]
    assert list(benign.x) == pytest.approx(expected)
    assert list(benign.error_x.array) == pytest.approx([0.3] * 5)
    assert list(one.layout.yaxis.ticktext) == [RESPONSE_TYPE_LABELS[t] for t in RESPONSE_TYPES]


def test_gap_reduction_and_distribution_plots(report):
    fig = gap_reduction_plot(report)
    assert [t.name for t in fig.data] == [
        "Explanation-based refusal",
        "Redirection",
        "Partial compliance",
    ]
    partial = fig.data[2]
    assert list(partial.y) == ["Helpfulness", "Appropriateness", "Frustration"]
    assert list(partial.x) == pytest.approx([0.71, 0.61, 0.61])
    dist = distribution_plot(report, "helpfulness")
    assert list(dist.data[0].x) == list(range(1, 8))
    assert sum(dist.data[0].y) == pytest.approx(1.0)


def test_figures_for_uses_stable_slugs(report):
    figures = figures_for(report)
    assert list(figures) == [
        "coefficients",
        "interaction",
        "gap_reduction",
        "variance_explained",
        "distribution_helpfulness",
        "distribution_appropriateness",
        "distribution_frustration",
    ]
    assert all(re.fullmatch(r"[a-z0-9_-]+", slug) for slug in figures)


@pytest.mark.parametrize("empty", [EMPTY_REPORT, {}, {"meta": {"measures": ["helpfulness"]}}])
def test_figures_handle_an_empty_report(empty):
    figures = figures_for(empty)
    assert list(figures)[:4] == [
        "coefficients",
        "interaction",
        "gap_reduction",
        "variance_explained",
    ]
    for fig in figures.values():
        assert len(fig.data) == 0
        assert any("No " in (a.text or "") for a in fig.layout.annotations)
        figure_div(fig)  # serialises
    assert distribution_plot(empty, "helpfulness").layout.annotations[0].text == "No data"
    assert report_tables(empty)["coefficients"] == []
    assert "Warnings" not in render_html_report(empty, "Empty study").split("<body>")[1]


def test_partial_rows_with_missing_ci_do_not_fail(report):
    broken = example_report()
    coef = broken["mixed_models"][0]["coefficients"][1]
    coef["ci_low"] = coef["ci_high"] = coef["se"] = None
    broken["gap_reduction"][0]["reduction"] = None
    fig = coefficient_plot(broken)
    assert fig.data[0].error_x.array[0] is None
    figure_div(fig)
    gap_reduction_plot(broken)


# ----------------------------------------------------------------------------- HTML


def test_figure_div_leaves_plotly_js_to_the_page(report):
    div = figure_div(coefficient_plot(report), div_id="plot-coefficients", filename="coefficients")
    assert "plotly.js v" not in div and len(div) < 200_000
    assert "Plotly.newPlot" in div and 'id="plot-coefficients"' in div
    # The modebar (with its PNG button) stays; the logo linking to plotly.com goes.
    assert '"displaylogo": false' in div
    assert '"toImageButtonOptions": {"format": "png", "filename": "coefficients"' in div
    assert '"displayModeBar": true' in div
    assert "cdn" not in div.lower() and "<script src" not in div


def test_standalone_figure_inlines_plotly_once(report):
    html = figure_html_document(gap_reduction_plot(report), "Refusal study: gap <reduction>")
    assert html.startswith("<!doctype html>")
    assert "<title>Refusal study: gap &lt;reduction&gt;</title>" in html
    _assert_no_external_reference(html)
    assert html.count("Plotly.newPlot") == 1


def test_whole_report_is_one_offline_file(report):
    html = render_html_report(report, "Refusal as interaction")
    _assert_no_external_reference(html)
    body = _without_plotly(html)
    assert body.count("Plotly.newPlot") == len(figures_for(report))
    assert "<h1>Refusal as interaction</h1>" in body
    warnings_at = body.index(WARNING)
    assert warnings_at < body.index("Headline findings")  # warnings come first
    assert "Response type &#x27;redirection&#x27; has only 12 ratings" in body
    assert "completed participants, not excluded" in body
    headline = (
        "Partial compliance closes 64% of the gap between direct refusal and full compliance "
        "on average across the 3 measures where its difference from direct refusal is clear "
        "(from 61% on appropriateness to 71% on helpfulness)."
    )
    assert headline in headline_sentences(report)
    assert headline in body
    assert (
        "Helpfulness: partial compliance closes 71% (95% CI 51% to 76%) of the gap between "
        "direct refusal (2.00) and full compliance (5.50)." in gap_sentences(report)
    )
    assert "Response type explains the most variance on 3 of 3 measures" in body
    for slug in TABLE_SLUGS:
        assert f'id="table-{slug}"' in body
    assert body.count("<caption>") == len(TABLE_SLUGS)
    assert '<th scope="col"' in body


def test_plotly_js_ships_with_the_package(tmp_path):
    path = plotly_js_path()
    assert path.is_file() and path.stat().st_size > 1_000_000
    copied = vendor_plotly_js(tmp_path)
    assert copied == tmp_path / "vendor" / "plotly" / "plotly.min.js"
    assert copied.read_bytes() == path.read_bytes()


# ----------------------------------------------------------------------------- page template


class _Result:
    """Stands in for an AnalysisResult: the template reads only these attributes."""

    def __init__(self, report: dict) -> None:
        self.report = report
        self.finished_at = "2026-11-22 20:00"
        self.inputs_hash = report["meta"]["inputs_hash"]
        self.code_version = "1"
        self.duration_s = 3.2
        self.n_ratings = report["meta"]["n_ratings"]


def _page_context(report: dict, **extra) -> dict:
    from types import SimpleNamespace

    return {
        "study": SimpleNamespace(slug="seed", title="Seed study"),
        "result": _Result(report),
        "include": "completed",
        "inclusion_options": ["completed", "all"],
        "pending": False,
        "last_failure": None,
        "is_stale": True,
        "freshness": {
            "n_participants": report["meta"]["n_participants"],
            "computed_at": None,
            "completed_since": 3,
        },
        "recompute_url": "/studies/seed/results/recompute/",
        "download_base": "/studies/seed/results/completed/",
        **extra,
    }


@pytest.mark.parametrize("rich", [True, False])
def test_results_template_renders_tables_figures_and_forms(report, rich):
    from django.template.loader import render_to_string
    from django.test import RequestFactory

    parts = results_page_parts(report)
    extra = {
        "figures": parts["figures"],
        "figures_payload": [
            {k: spec[k] for k in ("id", "data", "layout", "config")}
            for spec in parts["figures"].values()
        ],
        "tables": parts["tables"] if rich else report_tables(report),
        "warnings": parts["warnings"],
    }
    if rich:
        extra.update(
            headlines=parts["headlines"],
            gap_sentences=parts["gap_sentences"],
            reporting_rule=REPORTING_RULE,
        )
    request = RequestFactory().get("/studies/seed/results/")  # for {% csrf_token %}
    html = render_to_string("studies/results.html", _page_context(report, **extra), request)
    # Deferred (never render-blocking), and no inline script: the figures are JSON data that
    # static/js/results.js draws after plotly.js.
    assert html.count('<script src="/static/vendor/plotly/plotly.min.js" defer>') == 1
    assert html.index("plotly.min.js") < html.index("js/results.js")
    assert "Plotly.newPlot" not in html
    assert not re.search(r"<script(?![^>]*\b(src=|type=\"application/json\"))", html)
    payload = re.search(
        r'<script id="results-figures" type="application/json">(.*?)</script>', html, re.S
    )
    drawn = json.loads(payload[1])
    assert [f["id"] for f in drawn] == [f"plot-{slug}" for slug in parts["figures"]]
    for slug in parts["figures"]:
        assert f'id="plot-{slug}"' in html
    assert "3 completed since" in html
    # The CSRF token is random letters: it once held "cdn" and failed this check by chance.
    without_token = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
    assert "plotly.js v" not in without_token and "cdn" not in without_token.lower()
    assert WARNING in html and "completed participants, not excluded" in html
    assert 'name="include" value="all"' in html and 'method="get"' in html
    assert 'action="/studies/seed/results/recompute/"' in html and "csrfmiddlewaretoken" in html
    assert "New participants have completed since" in html
    for slug in TABLE_SLUGS:
        assert f'href="/studies/seed/results/completed/table/{slug}.csv"' in html
    for slug in parts["figures"]:
        assert f'href="/studies/seed/results/completed/figure/{slug}.html"' in html
    assert "/studies/seed/results/completed/report.html" in html
    assert "/studies/seed/results/completed/ratings.csv" in html
    assert html.count("<caption") == len(TABLE_SLUGS)
    assert '<th scope="col"' in html
    if rich:
        assert "Partial compliance closes 64% of the gap" in html
        assert "at least 30 participants" in html  # the reporting rule is on the page
        assert "Mixed-model coefficients" in html and "&lt;0.001" in html


def test_results_template_without_a_result():
    from django.template.loader import render_to_string

    context = _page_context(example_report(), result=None, pending=True, figures={}, tables={})
    html = render_to_string("studies/results.html", context)
    assert "No results yet" in html and "Recompute" in html
    assert "plotly.min.js" not in html
    assert 'http-equiv="refresh"' in html
