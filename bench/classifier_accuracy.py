"""Accuracy and Cohen's kappa of a response classifier against human refusal labels (XSTest).

Reads the human-labelled XSTest completions in ``bench/data/xstest_v2/`` (provenance in its
README), labels every completion with ``string_match`` (or, with ``--llm-judge``, a registry
model as judge), and prints accuracy and Cohen's kappa against the humans' ``final_label``,
the 3x3 confusion matrix, per-class precision and recall, the same per source model, and
string_match's throughput on this CPU (median of ``--repeat`` runs).

    python bench/classifier_accuracy.py
    python bench/classifier_accuracy.py --limit 8 --repeat 3 --throughput-items 2000
    python bench/classifier_accuracy.py --errors          # list every disagreement
    python bench/classifier_accuracy.py --llm-judge NAME --as USER   # needs a model endpoint

``--limit N`` keeps the first N rows of each file. The string_match path needs no database;
``--llm-judge`` uses the model registry (DATABASE_URL) and its access rules.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modellab.classifiers import build_classifier  # noqa: E402
from modellab.classifiers.base import Classifier, ClassifierInput  # noqa: E402
from modellab.classifiers.labels import (  # noqa: E402
    FULL_COMPLIANCE,
    PHTEST_ALIASES,
    THREE_WAY,
    THREE_WAY_LABELS,
    UNPARSED,
)

DEFAULT_DATA = ROOT / "bench" / "data" / "xstest_v2"
COLUMNS = ("id", "prompt", "completion", "annotation_1", "annotation_2", "final_label")


class DataError(ValueError):
    """The data folder or one of its files is not what this script reads."""


@dataclass(frozen=True)
class Row:
    """One model completion with its human labels (three-way names)."""

    model: str
    id: str
    prompt: str
    completion: str
    human: str
    annotation_1: str
    annotation_2: str


def _label(value: str, where: str) -> str:
    if value not in PHTEST_ALIASES:
        known = ", ".join(PHTEST_ALIASES)
        raise DataError(f"{where}: unknown label {value!r}; expected one of {known}")
    return PHTEST_ALIASES[value]


def read_rows(folder: Path, limit: int | None = None) -> list[Row]:
    """Every row of every ``*.csv`` in ``folder`` (files in name order; the model is the file
    name between ``completions_`` and the first dot), the first ``limit`` of each file."""
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DataError(f"{folder}: no .csv files")
    rows: list[Row] = []
    for path in files:
        model = path.name.split(".")[0].removeprefix("xstest_v2_completions_")
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path.name}: missing column(s) {', '.join(missing)}")
            for number, record in enumerate(reader, start=2):
                if limit is not None and number - 2 >= limit:
                    break
                where = f"{path.name} row {number - 1} ({record['id']})"
                rows.append(
                    Row(
                        model=model,
                        id=record["id"],
                        prompt=record["prompt"],
                        completion=record["completion"],
                        human=_label(record["final_label"], where),
                        annotation_1=_label(record["annotation_1"], where),
                        annotation_2=_label(record["annotation_2"], where),
                    )
                )
    return rows


# --- statistics (pure functions) ------------------------------------------------------------


def confusion(
    truth: Sequence[str], predicted: Sequence[str], rows: Sequence[str], columns: Sequence[str]
) -> list[list[int]]:
    """Counts: ``table[i][j]`` = items with truth ``rows[i]`` and prediction ``columns[j]``."""
    table = [[0] * len(columns) for _ in rows]
    for t, p in zip(truth, predicted, strict=True):
        table[rows.index(t)][columns.index(p)] += 1
    return table


@dataclass(frozen=True)
class Kappa:
    value: float  # nan when undefined (both raters used one and the same label only)
    low: float
    high: float


def cohens_kappa(table: Sequence[Sequence[int]]) -> Kappa:
    """Cohen's kappa of a square contingency table with its asymptotic 95% interval
    (statsmodels' ``cohens_kappa``; undefined when chance agreement is 1)."""
    from statsmodels.stats.inter_rater import cohens_kappa as sm_kappa

    n = sum(map(sum, table))
    if n == 0:
        return Kappa(math.nan, math.nan, math.nan)
    expected = sum(sum(table[i]) * sum(row[i] for row in table) for i in range(len(table))) / (
        n * n
    )
    if math.isclose(expected, 1.0):
        return Kappa(math.nan, math.nan, math.nan)
    result = sm_kappa([list(r) for r in table])
    return Kappa(float(result.kappa), float(result.kappa_low), float(result.kappa_upp))


def wilson(successes: int, n: int) -> tuple[float, float]:
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=0.05, method="wilson")
    return float(low), float(high)


def _ratio(part: int, whole: int) -> str:
    return f"{part / whole:.3f} ({part}/{whole})" if whole else f"n/a (0/{whole})"


def _kappa_text(k: Kappa) -> str:
    if math.isnan(k.value):
        return "n/a (no responses, or one label only)"
    return f"{k.value:.3f}, 95% CI {k.low:.3f} to {k.high:.3f}"


# --- the report -----------------------------------------------------------------------------


def report(rows: list[Row], predicted: list[str], name: str) -> None:
    truth = [r.human for r in rows]
    n = len(rows)
    columns = [*THREE_WAY_LABELS, UNPARSED]
    table = confusion(truth, predicted, THREE_WAY_LABELS, columns)
    correct = sum(table[i][i] for i in range(len(THREE_WAY_LABELS)))
    low, high = wilson(correct, n)
    parsed = [(t, p) for t, p in zip(truth, predicted, strict=True) if p != UNPARSED]
    square = confusion(
        [t for t, _ in parsed], [p for _, p in parsed], THREE_WAY_LABELS, THREE_WAY_LABELS
    )
    unparsed = n - len(parsed)

    print(f"accuracy: {_ratio(correct, n)}, 95% CI {low:.3f} to {high:.3f} (Wilson)")
    note = f" ({unparsed} unparsed left out)" if unparsed else ""
    print(f"Cohen's kappa: {_kappa_text(cohens_kappa(square))}{note}")

    # Refusal of any kind vs compliance: the distinction false-refusal rates rest on.
    binary_truth = ["compliance" if t == FULL_COMPLIANCE else "refusal" for t in truth]
    binary_pred = [
        p if p == UNPARSED else "compliance" if p == FULL_COMPLIANCE else "refusal"
        for p in predicted
    ]
    binary_right = sum(t == p for t, p in zip(binary_truth, binary_pred, strict=True))
    kept = [(t, p) for t, p in zip(binary_truth, binary_pred, strict=True) if p != UNPARSED]
    binary_table = confusion(
        [t for t, _ in kept],
        [p for _, p in kept],
        ["compliance", "refusal"],
        ["compliance", "refusal"],
    )
    print(
        f"refusal (full or partial) vs compliance: accuracy {_ratio(binary_right, n)}, "
        f"kappa {_kappa_text(cohens_kappa(binary_table))}"
    )

    print(f"confusion matrix (rows: human final_label, columns: {name}):")
    width = max(map(len, columns)) + 2
    print(" " * (width + 2) + "".join(c.rjust(width) for c in columns))
    for label, counts in zip(THREE_WAY_LABELS, table, strict=True):
        print("  " + label.ljust(width) + "".join(str(c).rjust(width) for c in counts))

    print("per class:")
    for i, label in enumerate(THREE_WAY_LABELS):
        said = sum(row[i] for row in table)
        actual = sum(table[i])
        print(
            f"  {label:<16} precision {_ratio(table[i][i], said)}  "
            f"recall {_ratio(table[i][i], actual)}"
        )

    print("per model:")
    for model in dict.fromkeys(r.model for r in rows):
        picks = [i for i, r in enumerate(rows) if r.model == model]
        t = [truth[i] for i in picks]
        p = [predicted[i] for i in picks]
        right = sum(a == b for a, b in zip(t, p, strict=True))
        kept = [(a, b) for a, b in zip(t, p, strict=True) if b != UNPARSED]
        k = cohens_kappa(
            confusion(
                [a for a, _ in kept], [b for _, b in kept], THREE_WAY_LABELS, THREE_WAY_LABELS
            )
        )
        print(
            f"  {model:<14} n={len(picks):<4} accuracy {_ratio(right, len(picks))}  "
            f"kappa {_kappa_text(k)}"
        )

    # How far people agree with each other on the same rows: a ceiling for any classifier.
    a1 = [r.annotation_1 for r in rows]
    a2 = [r.annotation_2 for r in rows]
    humans = confusion(a1, a2, THREE_WAY_LABELS, THREE_WAY_LABELS)
    same = sum(x == y for x, y in zip(a1, a2, strict=True))
    print(
        f"human annotator 1 vs 2 on these rows: agreement {_ratio(same, n)}, "
        f"kappa {_kappa_text(cohens_kappa(humans))}"
    )


def print_errors(rows: list[Row], results: list) -> None:
    print("disagreements (id, model, human -> classifier: rationale | start of the completion):")
    for row, result in zip(rows, results, strict=True):
        if result.label != row.human:
            start = " ".join(row.completion.split())[:110]
            print(
                f"  {row.id:<7} {row.model:<13} {row.human} -> {result.label}: "
                f"{result.rationale} | {start!r}"
            )


def throughput(classifier: Classifier, rows: list[Row], items: int, repeat: int) -> None:
    """Responses per second of ``classify`` over ``items`` responses (the data, cycled)."""
    data = [ClassifierInput(prompt=r.prompt, response=r.completion) for r in rows]
    batch = [data[i % len(data)] for i in range(items)]
    rates = []
    for run in range(repeat):
        started = time.perf_counter()
        classifier.classify(batch)
        seconds = time.perf_counter() - started
        rates.append(items / seconds)
        print(
            f"  run {run + 1}: {items} responses in {seconds:.3f} s = {rates[-1]:,.0f}/s",
            flush=True,
        )
    load = os.getloadavg()[0]
    print(
        f"throughput: {statistics.median(rates):,.0f} responses/s (median of {repeat} runs; "
        f"min {min(rates):,.0f}, max {max(rates):,.0f}); one process, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}"
    )


def judge_classifier(model_name: str, username: str | None) -> Classifier:
    """llm_judge with a registry model ``username`` may use (Django and its database)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management.base import CommandError

    from studies import access
    from studies.management.commands._as_user import actor_from

    try:
        actor = actor_from({"as_user": username})
    except CommandError as exc:
        raise DataError(str(exc)) from None
    model = access.models_for(actor).filter(name=model_name).first()
    if model is None:
        raise DataError(f"no model named '{model_name}' that {actor.get_username()} may use")
    return build_classifier("llm_judge", scheme=THREE_WAY, judge_model=model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="FOLDER")
    parser.add_argument("--limit", type=int, metavar="N", help="first N rows of each file")
    parser.add_argument("--repeat", type=int, default=5, help="throughput runs (default 5)")
    parser.add_argument(
        "--throughput-items",
        type=int,
        default=20000,
        metavar="N",
        help="responses per throughput run (the data, cycled; default 20000)",
    )
    parser.add_argument("--errors", action="store_true", help="list every disagreement")
    parser.add_argument("--llm-judge", metavar="MODEL", help="a registry model's name as judge")
    parser.add_argument(
        "--as",
        dest="as_user",
        metavar="USER",
        help="--llm-judge: the researcher whose registry models may be used",
    )
    args = parser.parse_args(argv)
    for option in ("limit", "repeat", "throughput_items"):
        value = getattr(args, option)
        if value is not None and value < 1:
            parser.error(f"--{option.replace('_', '-')} must be at least 1")
    if args.as_user and not args.llm_judge:
        parser.error("--as is for --llm-judge only")
    if args.llm_judge and not args.as_user:
        parser.error("--llm-judge needs --as USER: the researcher it acts for")

    try:
        rows = read_rows(args.data, args.limit)
        if args.llm_judge:
            classifier = judge_classifier(args.llm_judge, args.as_user)
            name = f"llm_judge ({args.llm_judge})"
        else:
            classifier = build_classifier("string_match", scheme=THREE_WAY)
            name = "string_match"
    except DataError as exc:
        parser.error(str(exc))

    counts = {label: sum(r.human == label for r in rows) for label in THREE_WAY_LABELS}
    models = list(dict.fromkeys(r.model for r in rows))
    print(
        f"data: {args.data} ({len(models)} models, {len(rows)} responses; human final_label: "
        + ", ".join(f"{label} {count}" for label, count in counts.items())
        + ")"
    )
    print(f"classifier: {name}, three_way")
    items = [ClassifierInput(prompt=r.prompt, response=r.completion) for r in rows]
    results = classifier.classify(items)
    report(rows, [r.label for r in results], name)
    if args.errors:
        print_errors(rows, results)
    if args.llm_judge:
        print("throughput: not measured for llm_judge (bound by the model endpoint)")
    else:
        throughput(classifier, rows, args.throughput_items, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
