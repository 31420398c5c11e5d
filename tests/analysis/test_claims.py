"""Results you can trust: what small, empty, degenerate and random studies may and may not say.

Every rendering is checked: the results page's sentences (html_report), the self-contained
HTML report, and the text report of `python -m studies.analysis`.
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd
import pytest

from studies.analysis import ReportOptions, build_report, claims
from studies.analysis.__main__ import main
from studies.analysis.figures import (
    coefficient_plot,
    distribution_plot,
    gap_reduction_plot,
    interaction_plot,
)
from studies.analysis.html_report import (
    REPORTING_RULE,
    gap_sentences,
    headline_sentences,
    render_html_report,
    results_page_parts,
)
from studies.analysis.text import format_report
from tests.analysis.simulate import random_answers, simulate_long_format

# Words that state a finding: a share of a gap, or a factor that matters.
EFFECT_WORDS = re.compile(r"\b(closes|widens|reduces|explains the most)\b")


def _shares(text: str) -> list[str]:
    """Percentages stated as shares: not the reporting rule's, not a "95% CI"."""
    text = text.replace(REPORTING_RULE, "")
    text = re.sub(r"95% (CI|interval|confidence)", "", text)
    text = text.replace("-100%..200%", "").replace("−100% to 200%", "")
    return re.findall(r"\d+%", text)


def _report(df: pd.DataFrame, reps: int = 200, seed: int = 0) -> dict:
    return build_report(df, ReportOptions(bootstrap_reps=reps, seed=seed))


def _all_text(report: dict) -> dict[str, str]:
    """The words of every rendering (the HTML report without its inlined plotly.js)."""
    document = render_html_report(report, "Study")
    body = document[document.index("<body>") :]
    findings = body[body.index("Headline findings") : body.index('id="figures-h"')]
    return {
        "headlines": "\n".join(headline_sentences(report)),
        "gap_sentences": "\n".join(gap_sentences(report)),
        "html_findings": html.unescape(re.sub(r"<[^>]+>", " ", findings)),
        "text_gaps": _text_gap_section(format_report(report)),
    }


def _text_gap_section(text: str) -> str:
    start = text.index("Gap reduction (")
    end = text.find("\n\n", start)
    return text[start : end if end > 0 else None]


@pytest.fixture(scope="module")
def three() -> dict:
    return _report(simulate_long_format(3, seed=1, rounded=True))


# ----------------------------------------------------------------------------- internal errors


@pytest.mark.parametrize("case", ["no rows", "nobody included"])
def test_gap_reduction_of_no_ratings_is_empty_not_a_crash(case, caplog):
    """Once shown on the page: "gap_reduction failed: TypeError: Cannot cast array data from
    dtype('float64')…" (np.bincount of the empty, float-typed cell codes)."""
    df = simulate_long_format(3, seed=1, rounded=True)
    df = df.iloc[:0] if case == "no rows" else df.assign(participant_status="active")
    report = _report(df)
    assert report["meta"]["failed_parts"] == []
    assert report["gap_reduction"] == []
    assert not any("failed" in w or "Error" in w for w in report["meta"]["warnings"])
    assert "Traceback" not in caplog.text


def test_page_shows_a_neutral_note_for_a_crashed_part_of_an_old_report(three):
    """Reports stored before failed_parts existed carry the exception in their warnings."""
    old = {
        **three,
        "meta": {
            **three["meta"],
            "failed_parts": None,
            "warnings": [
                "no ratings for partial_compliance",
                "gap_reduction failed: TypeError: Cannot cast array data from dtype('float64')",
            ],
        },
    }
    parts = results_page_parts(old)
    assert parts["warnings"] == ["no ratings for partial_compliance"]
    assert parts["not_computed"] == ["This part could not be computed: gap reductions."]
    body = render_html_report(old, "Study").split("<body>")[1]
    assert "TypeError" not in body and "could not be computed: gap reductions" in body


# ----------------------------------------------------------------------------- headlines


def test_three_participants_say_not_enough_data_with_the_counts(three):
    texts = _all_text(three)
    assert headline_sentences(three) == [
        "Not enough data yet: 3 participants are included; gap reductions are reported from "
        "30 participants on (27 more needed), and only where the gap they are a share of is "
        "clearly non-zero."
    ]
    assert gap_sentences(three) == []
    assert "not enough data yet: 3 participants (27 more needed)" in texts["text_gaps"]
    for name, text in texts.items():
        assert not EFFECT_WORDS.search(text), (name, text)
        assert not _shares(text), (name, text)


def test_an_empty_study_says_not_enough_data():
    report = _report(simulate_long_format(3, seed=1, rounded=True).iloc[:0])
    assert headline_sentences(report)[0].startswith(
        "Not enough data yet: 0 participants are included"
    )
    for name, text in _all_text(report).items():
        assert not EFFECT_WORDS.search(text), (name, text)


@pytest.mark.parametrize("case", ["every answer identical", "one response type only"])
def test_degenerate_studies_claim_nothing(case):
    df = simulate_long_format(60, seed=5, rounded=True)
    stimulus = df["kind"] == "stimulus"
    if case == "every answer identical":
        df.loc[stimulus, "value"] = 4.0
    else:
        df = df[~stimulus | (df["response_type"] == "partial_compliance")]
    report = _report(df)
    assert report["meta"]["failed_parts"] == []
    for name, text in _all_text(report).items():
        assert not EFFECT_WORDS.search(text), (name, text)
        assert not _shares(text), (name, text)


@pytest.fixture(scope="module", params=[0, 1])
def random_study(request) -> tuple[int, pd.DataFrame, dict]:
    """40 participants answering the seed design uniformly at random (two draws)."""
    df = random_answers(40, seed=request.param)
    return request.param, df, _report(df, reps=1000, seed=request.param)


def test_uniformly_random_answers_never_claim_an_effect(random_study):
    """40 participants answering at random once read "redirection reduces the
    perceived_compliance gap by 246% [95% CI -897%, 1510%]"."""
    _, _, report = random_study
    for name, text in _all_text(report).items():
        assert not EFFECT_WORDS.search(text), (name, text)
    # No share outside the plausible range appears anywhere.
    for text in (headline_sentences(report), gap_sentences(report)):
        for value in re.findall(r"(−?\d+)%", " ".join(text)):
            assert -100 <= int(value.replace("−", "-")) <= 200


def test_the_cli_on_random_answers_claims_no_effect(random_study, tmp_path, capsys):
    """`python -m studies.analysis` on the answers as a CSV, as a researcher runs it."""
    seed, df, _ = random_study
    path = tmp_path / "random.csv"
    df.to_csv(path, index=False)
    assert main([str(path), "--bootstrap", "300", "--seed", str(seed)]) == 0
    gaps = _text_gap_section(capsys.readouterr().out)
    assert not EFFECT_WORDS.search(gaps), gaps


def test_a_strong_effect_with_many_participants_is_reported_as_a_number(likert_report):
    """The seed design's simulated truth (partial compliance closes 60% of the helpfulness
    gap), 480 participants: the share is printed with its interval, in every rendering."""
    partial = next(s for s in headline_sentences(likert_report) if s.startswith("Partial"))
    share = int(re.search(r"closes (\d+)% of the gap", partial)[1])
    assert 40 <= share <= 80
    assert any(
        re.match(r"Helpfulness: partial compliance closes \d+% \(95% CI \d+% to \d+%\)", s)
        for s in gap_sentences(likert_report)
    )
    text = format_report(likert_report)
    assert re.search(r"partial_compliance reduces the helpfulness gap by \d+% \[95% CI", text)
    assert "Response type explains the most variance" in render_html_report(likert_report, "S")


def test_a_gap_reduction_needs_a_clear_gap_and_a_plausible_interval():
    row = {
        "reduction": 0.5,
        "ci_low": 0.2,
        "ci_high": 0.8,
        "gap": 1.0,
        "gap_ci_low": 0.4,
        "gap_ci_high": 1.6,
        "n_participants": 30,
    }
    assert claims.gap_status(row) == claims.REPORTED
    assert claims.gap_status(row | {"n_participants": 29}) == claims.TOO_FEW
    assert claims.gap_status(row | {"gap_ci_low": -0.1}) == claims.NO_CLEAR_GAP
    assert claims.gap_status(row | {"gap_ci_low": None}) == claims.NO_CLEAR_GAP
    assert claims.gap_status(row | {"ci_high": 2.01}) == claims.TOO_UNCERTAIN
    assert claims.gap_status(row | {"ci_low": None}) == claims.TOO_UNCERTAIN
    assert claims.gap_status(row | {"reduction": None, "gap": None}) == claims.NOT_ESTIMABLE


# ----------------------------------------------------------------------------- axes


def _value_axes(fig) -> list:
    return [fig.layout[name] for name in fig.layout if name.startswith("xaxis")]


def test_charts_of_means_keep_the_scale_on_their_axis(three):
    """Three participants once drew 1–7 means on an axis from −20 to 40 (the CI whiskers)."""
    for fig in (interaction_plot(three), interaction_plot(three, "helpfulness")):
        for axis in _value_axes(fig):
            assert tuple(axis.range) == pytest.approx((0.7, 7.3))
            assert axis.autorange is False
    dist = distribution_plot(three, "helpfulness")
    assert tuple(dist.layout.xaxis.range) == pytest.approx((0.5, 7.5))


def test_a_five_point_scale_gets_a_five_point_axis():
    df = simulate_long_format(30, seed=3, rounded=True)
    df["value"] = np.clip(df["value"], 1, 5)
    report = build_report(df, ReportOptions(bootstrap_reps=50, points=5))
    assert tuple(interaction_plot(report).layout.xaxis.range) == pytest.approx((0.7, 5.3))


def test_coefficient_axes_are_symmetric_and_bounded_by_the_scale(three, likert_report):
    wide = coefficient_plot(three)
    for axis in _value_axes(wide):
        low, high = axis.range
        assert low == -high and 0 < high <= 6  # never wider than the largest difference
    narrow = coefficient_plot(likert_report)
    estimates = [abs(x) for trace in narrow.data for x in trace.x if x is not None]
    for axis in _value_axes(narrow):
        low, high = axis.range
        assert low == -high and max(estimates) < high < 6


def test_the_gap_chart_shows_only_reported_shares(three, likert_report):
    assert len(gap_reduction_plot(three).data) == 0  # "no share can be reported yet"
    fig = gap_reduction_plot(likert_report)
    low, high = fig.layout.xaxis.range
    assert -1 <= low < 0 and 1 < high <= 2
