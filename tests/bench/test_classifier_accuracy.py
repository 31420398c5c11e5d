"""bench/classifier_accuracy.py as typed in a shell: the figures it prints on a slice of the
XSTest sample equal an independent computation; bad data is a clear error; the llm_judge path
goes through a registry model the user may use (no timing is checked)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from modellab.classifiers.string_match import match

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "classifier_accuracy.py"
DATA = ROOT / "bench" / "data" / "xstest_v2"
LABELS = ("full_compliance", "full_refusal", "partial_refusal")
HUMAN = dict(zip(("1_full_compliance", "2_full_refusal", "3_partial_refusal"), LABELS, strict=True))


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def sample(limit: int) -> list[dict[str, str]]:
    """The first ``limit`` rows of each file, read with the csv module alone."""
    rows = []
    for path in sorted(DATA.glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as handle:
            for i, record in enumerate(csv.DictReader(handle)):
                if i == limit:
                    break
                rows.append({**record, "model": path.name.split(".")[0].split("_")[-1]})
    return rows


def kappa(pairs: list[tuple[str, str]]) -> float:
    """Cohen's kappa from its definition: (observed - chance) / (1 - chance)."""
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[label] * second[label] for label in first) / (n * n)
    return (observed - chance) / (1 - chance)


def printed(pattern: str, text: str) -> re.Match:
    found = re.search(pattern, text, re.M)
    assert found, f"{pattern!r} not in:\n{text}"
    return found


def test_the_printed_figures_equal_an_independent_computation():
    result = run("--limit", "9", "--repeat", "2", "--throughput-items", "40")
    assert result.returncode == 0, result.stderr
    out = result.stdout

    rows = sample(9)
    truth = [HUMAN[r["final_label"]] for r in rows]
    predicted = [match(r["completion"]).label for r in rows]
    pairs = list(zip(truth, predicted, strict=True))
    right = sum(t == p for t, p in pairs)

    assert f"{len(rows)} responses" in out and "4 models" in out
    assert printed(r"^accuracy: ([\d.]+) \((\d+)/(\d+)\)", out).groups() == (
        f"{right / len(rows):.3f}",
        str(right),
        str(len(rows)),
    )
    assert float(printed(r"^Cohen's kappa: ([-\d.]+)", out)[1]) == pytest.approx(
        kappa(pairs), abs=5e-4
    )
    binary = [("c" if t == LABELS[0] else "r", "c" if p == LABELS[0] else "r") for t, p in pairs]
    line = printed(r"^refusal .* accuracy [\d.]+ \((\d+)/\d+\), kappa ([-\d.]+)", out)
    assert int(line[1]) == sum(a == b for a, b in binary)
    assert float(line[2]) == pytest.approx(kappa(binary), abs=5e-4)

    # The confusion matrix, row by row (human label, then counts per classifier label).
    counts = Counter(pairs)
    for label in LABELS:
        cells = printed(rf"^  {label}\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out).groups()
        assert [int(c) for c in cells] == [counts[(label, p)] for p in LABELS] + [0]

    # Recall per class, and accuracy per source model.
    for label in LABELS:
        actual = truth.count(label)
        found = printed(rf"^  {label}\s+precision .* recall .*\((\d+)/(\d+)\)$", out)
        assert (int(found[1]), int(found[2])) == (counts[(label, label)], actual)
    for model in ("gpt4", "llama2new", "llama2orig", "mistralguard"):
        mine = [(t, p) for (t, p), r in zip(pairs, rows, strict=True) if r["model"] == model]
        found = printed(rf"^  {model}\s+n=(\d+)\s+accuracy [\d.]+ \((\d+)/(\d+)\)", out)
        assert found.groups() == (str(len(mine)), str(sum(a == b for a, b in mine)), str(len(mine)))

    humans = [(HUMAN[r["annotation_1"]], HUMAN[r["annotation_2"]]) for r in rows]
    found = printed(r"^human annotator 1 vs 2 .* \((\d+)/(\d+)\)", out)
    assert int(found[1]) == sum(a == b for a, b in humans)

    assert len(re.findall(r"^  run \d: 40 responses", out, re.M)) == 2
    assert printed(r"^throughput: ([\d,]+) responses/s \(median of 2 runs", out)


def test_errors_lists_each_disagreement_with_its_rationale():
    result = run("--limit", "4", "--repeat", "1", "--throughput-items", "10", "--errors")
    assert result.returncode == 0, result.stderr
    rows = sample(4)
    wrong = [r for r in rows if HUMAN[r["final_label"]] != match(r["completion"]).label]
    listed = re.findall(r"^  (v2-\d+)\s+(\w+)\s+\w+ -> \w+: .*phrase", result.stdout, re.M)
    assert listed == [(r["id"], r["model"]) for r in wrong]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,prompt,completion\nv2-1,p,c\n", "missing column(s) annotation_1, annotation_2"),
        (
            "id,prompt,completion,annotation_1,annotation_2,final_label\n"
            "v2-1,p,c,1_full_compliance,1_full_compliance,4_maybe\n",
            "xstest_v2_completions_x.csv row 1 (v2-1): unknown label '4_maybe'",
        ),
    ],
)
def test_bad_data_is_a_clear_error(tmp_path, content, message):
    (tmp_path / "xstest_v2_completions_x.csv").write_text(content, encoding="utf-8")
    result = run("--data", str(tmp_path))
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_bad_options_are_clear_errors(tmp_path):
    assert "no .csv files" in run("--data", str(tmp_path)).stderr
    assert "--limit must be at least 1" in run("--limit", "0").stderr
    assert "--llm-judge needs --as USER" in run("--llm-judge", "judge").stderr
    assert "--as is for --llm-judge only" in run("--as", "ada").stderr


@pytest.mark.django_db(transaction=True)
def test_llm_judge_through_a_registry_model_the_user_may_use():
    from django.contrib.auth import get_user_model
    from django.db import connection

    from studies.models import LanguageModel
    from tests.generation.chat_server import ChatServer
    from tests.modellab.classifiers.test_judge import Script, verdict

    users = get_user_model().objects
    ada = users.create_user("ada", password="pw-ada-123")
    users.create_user("bob", password="pw-bob-123")  # an account that may not use ada's model
    rows = sample(1)  # one response of each model
    # The judge agrees with the humans except on the first row, which it cannot answer.
    answers = {r["completion"]: [verdict(HUMAN[r["final_label"]], "scripted")] for r in rows[1:]}
    answers[rows[0]["completion"]] = ["not json"] * 3
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    with ChatServer(handler=Script(answers)) as server:
        LanguageModel.objects.create(
            name="judge",
            backend="openai",
            backend_settings={"base_url": server.url, "model": "m", "max_retries": 0},
            owner=ada,
            shared=False,
        )
        result = run("--limit", "1", "--llm-judge", "judge", "--as", "ada", env=env)
        refused = run("--limit", "1", "--llm-judge", "judge", "--as", "bob", env=env)

    assert result.returncode == 0, result.stderr
    assert "classifier: llm_judge (judge), three_way" in result.stdout
    assert "accuracy: 0.750 (3/4)" in result.stdout
    assert "(1 unparsed left out)" in result.stdout
    unanswered = HUMAN[rows[0]["final_label"]]
    assert printed(rf"^  {unanswered}\s+\d+\s+\d+\s+\d+\s+1$", result.stdout)
    assert "throughput: not measured for llm_judge" in result.stdout
    assert refused.returncode == 2
    assert "no model named 'judge' that bob may use" in refused.stderr
