"""python -m studies.analysis: text and JSON output, column mapping, exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studies.analysis.__main__ import main
from studies.analysis.text import format_report, headline
from tests.analysis.simulate import simulate_long_format

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "ratings.csv"
    # Enough participants (claims.MIN_PARTICIPANTS) for a gap reduction to be reported.
    simulate_long_format(120, seed=8, rounded=True).to_csv(path, index=False)
    return path


def test_json_output_parses_and_has_coefficients(csv_path):
    """Run as a real module, the way a researcher would."""
    out = subprocess.run(
        [sys.executable, "-m", "studies.analysis", str(csv_path), "--json", "--bootstrap", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    model = report["mixed_models"][0]
    assert model["coefficients"]
    assert model["coefficients"][1]["term"] == "response_type[direct_refusal]"
    assert report["gap_reduction"][0]["bootstrap_reps"] == 50


def test_text_output_leads_with_gap_reductions(csv_path, capsys):
    assert main([str(csv_path), "--bootstrap", "50", "--measures", "helpfulness"]) == 0
    text = capsys.readouterr().out
    assert "partial_compliance reduces the helpfulness gap by" in text
    assert "Model: helpfulness" in text and "response_type[partial_compliance]" in text
    assert "Krippendorff" in text


def test_missing_file_exits_2_with_a_message(tmp_path, capsys):
    assert main([str(tmp_path / "nope.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_bad_file_exits_2_as_a_process(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    out = subprocess.run(
        [sys.executable, "-m", "studies.analysis", str(bad)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2
    assert "missing required column(s)" in out.stderr and "who, what" in out.stderr
    assert out.stdout == ""


def test_column_mapping(csv_path, tmp_path, capsys):
    renamed = tmp_path / "theirs.csv"
    text = csv_path.read_text().replace("participant_id", "PROLIFIC_PID", 1)
    renamed.write_text(text.replace(",value,", ",rating,", 1))
    assert main([str(renamed), "--json", "--bootstrap", "0"]) == 2
    assert "participant_id" in capsys.readouterr().err
    args = [str(renamed), "--json", "--bootstrap", "0", "--map", "PROLIFIC_PID=participant_id"]
    assert main([*args, "--map", "rating=value", "--measures", "helpfulness"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["meta"]["n_participants"] == 120


def test_options_reach_the_report(csv_path, capsys):
    args = [str(csv_path), "--json", "--bootstrap", "20", "--seed", "3", "--include", "all"]
    args += ["--reference", "full_compliance", "--baseline", "explanation_based"]
    args += ["--composite", "neg=frustration,satisfaction;reverse=satisfaction"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["meta"]["baseline_level"] == "explanation_based"
    assert "all participants" in report["meta"]["inclusion"]
    assert report["composites"] == [
        {"name": "neg", "items": ["frustration", "satisfaction"], "reverse_coded": ["satisfaction"]}
    ]
    assert "neg" in report["meta"]["measures"]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--measures", "helpfullness"], "helpfullness"),
        (["--map", "nonsense"], "--map expects"),
        (["--composite", "neg"], "--composite expects"),
        (["--composite", "neg=a,b;flip=a"], "unknown part"),
        (["--bootstrap", "-1"], "--bootstrap"),
    ],
)
def test_bad_options_exit_2(csv_path, capsys, extra, message):
    assert main([str(csv_path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_headline_wording():
    row = {
        "measure": "helpfulness",
        "response_type": "partial_compliance",
        "reduction": 0.61,
        "ci_low": 0.48,
        "ci_high": 0.72,
        "gap": 2.1,
        "gap_ci_low": 1.6,
        "gap_ci_high": 2.6,
        "n_participants": 480,
    }
    assert headline(row) == (
        "partial_compliance reduces the helpfulness gap by 61% [95% CI 48%, 72%]"
    )
    widens = headline(row | {"reduction": -0.2, "ci_low": -0.4, "ci_high": -0.1})
    assert "widens" in widens
    assert "no gap reduction" in headline(row | {"reduction": None, "gap": None})
    unclear = headline(row | {"ci_low": -0.1})
    assert "not clearly different" in unclear and "reduces" not in unclear
    few = headline(row | {"n_participants": 3})
    assert "not enough data yet (3 participants; 30 needed)" in few and "%" not in few
    no_gap = headline(row | {"gap_ci_low": -0.2})
    assert "not clearly non-zero" in no_gap and "61%" not in no_gap
    wild = headline(row | {"reduction": 2.46, "ci_low": -8.97, "ci_high": 15.1})
    assert "too uncertain" in wild and "246%" not in wild and "%," not in wild


def test_format_report_covers_every_section(likert_report):
    text = format_report(likert_report)
    for part in ("Gap reduction", "Means by response type", "Model: negative",
                 "Variance explained", "Cronbach's alpha, affect", "attention check all",
                 "WARNINGS"):  # fmt: skip
        assert part in text
