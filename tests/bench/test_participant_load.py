"""The load benchmark and the kill -9 drill, run for real against gunicorn (tiny sizes)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import participant_load as pl  # noqa: E402

PG_SERVER = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/6")
# Bounds on the subprocesses: they stop themselves long before; nothing here is a timing check.
BOUND_S = 900

SCALE = [(1, "Strongly disagree"), (2, "Disagree"), (3, "Somewhat disagree"), (7, "Strongly agree")]
CHECK_TEXT = "To show you are reading carefully, please select &#x27;Somewhat disagree&#x27;."


def fieldset_page(text: str) -> str:
    radios = "".join(
        f'<label><input type="radio" name="attention_1" value="{v}">'
        f'<span class="point-number">{v}</span><span class="point-label">{a}</span></label>'
        for v, a in SCALE
    )
    return (
        '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="tok">'
        f"<fieldset><legend>{text}</legend>{radios}</fieldset>"
        '<button type="submit">Next</button></form>'
    )


def matrix_page(text: str) -> str:
    cells = "".join(
        f'<td><label><input type="radio" name="attention_2" value="{v}">'
        f'<span class="visually-hidden">{text}: {a}</span><span>{v}</span></label></td>'
        for v, a in SCALE
    )
    return (
        f'<form method="post"><table><tr><th scope="row">{text}</th>{cells}</tr></table>'
        '<button type="submit">Next</button></form>'
    )


@pytest.mark.parametrize("page", [fieldset_page, matrix_page])
def test_an_attention_check_gets_the_answer_it_names(page):
    form, _h1 = pl.parse_page(page(CHECK_TEXT))
    data, answers, instructed = pl.fill_form(form, random.Random(0))
    assert instructed
    assert list(answers.values()) == ["3"]


def test_a_plain_question_gets_some_point_of_its_scale():
    form, _h1 = pl.parse_page(fieldset_page("The response was helpful to me."))
    _data, answers, instructed = pl.fill_form(form, random.Random(0))
    assert not instructed
    assert answers["attention_1"] in {"1", "2", "3", "7"}


def test_consent_is_given_and_hidden_inputs_are_kept():
    form, _h1 = pl.parse_page(
        '<form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="tok">'
        '<button type="submit" name="decision" value="agree">I agree</button>'
        '<button type="submit" name="decision" value="decline">No</button></form>'
    )
    data, _answers, _instructed = pl.fill_form(form, random.Random(0))
    assert data == [("csrfmiddlewaretoken", "tok"), ("decision", "agree")]


def run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BOUND_S,
    )


@pytest.mark.long_running
def test_load_client_completes_every_participant_with_exact_ratings(tmp_path):
    out = tmp_path / "runs.json"
    done = run(
        "bench/participant_load.py",
        "--designs", "bench,seed", "--n", "6", "--concurrency", "3", "--workers", "2",
        "--port", "8402", "--floor-requests", "30", "--warmup", "0",
        "--pg-server", PG_SERVER, "--broker-url", BROKER, "--json-out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    bench, seed = json.loads(out.read_text())
    for row in (bench, seed):
        assert row["completed"] == 6
        assert row["errors"] == 0, row["error_kinds"]
        assert row["check"]["ok"], row["check"]
    # 8 items x 3 questions; the seed design: 8 items x 10 questions and 2 attention checks.
    assert bench["check"]["ratings_in_db"] == 6 * 8 * 3
    assert seed["check"]["ratings_in_db"] == 6 * (8 * 10 + 2)
    assert seed["steps"]["topic"] == 6 * 8
    assert seed["steps"]["attention"] == 6 * 2
    assert "| bench | 6 |" in done.stdout


@pytest.mark.long_running
def test_killing_a_worker_loses_and_duplicates_no_acknowledged_answer():
    done = run(
        "bench/drills/kill_worker.py",
        "--n", "8", "--concurrency", "4", "--workers", "2", "--kills", "1", "--port", "8412",
        "--pg-server", PG_SERVER, "--broker-url", BROKER,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "VERDICT: PASS" in done.stdout
