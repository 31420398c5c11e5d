"""Command line: python -m studies.analysis.power --spec STUDY.yaml --assumptions POWER.yaml …"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from studies.analysis.power.assumptions import PowerInputError, assumptions_from_dict
from studies.analysis.power.output import power_csv, power_curve, power_text
from studies.analysis.power.simulation import (
    ADJUSTMENTS,
    PlannedDesign,
    power_settings,
    run_power,
    synthetic_queries,
)
from studies.design import QueryRef
from studies.spec import SpecError, design_from_spec, load_spec_file
from studies.stimuli_file import StimuliFileError, read_stimuli_file


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.analysis.power",
        description="Power of the crossed mixed model to detect each response-type effect of a "
        "planned design, by simulation: ratings are simulated on the study's own plan, the "
        "analysis's model is refitted to each data set, and detections are counted.",
    )
    parser.add_argument("--spec", required=True, help="study spec file (YAML or JSON)")
    parser.add_argument(
        "--assumptions",
        required=True,
        help="effects and variance components (YAML), e.g. examples/refusal-perception/power.yaml",
    )
    parser.add_argument("--measure", help="plan for this question instead of the file's")
    parser.add_argument(
        "--participants",
        default="80,160,...,960",
        help="participant counts: 80,160,...,960 (first, second, ..., last) or a list",
    )
    parser.add_argument("--simulations", type=int, default=500, help="data sets per count")
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided test level")
    parser.add_argument("--adjust", choices=ADJUSTMENTS, default="none", help="multiplicity")
    parser.add_argument("--seed", type=int, default=0, help="random seed (results repeat)")
    parser.add_argument(
        "--queries",
        type=int,
        help="number of queries, for a spec without a stimuli file (default: the file's)",
    )
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    parser.add_argument("--html", metavar="FILE", help="also write the power curve (HTML)")
    parser.add_argument("--progress", action="store_true", help="report progress on stderr")
    return parser.parse_args(argv)


def _planned(args: argparse.Namespace) -> tuple[PlannedDesign, dict]:
    spec, stimuli_path = load_spec_file(args.spec)
    if args.queries is not None:
        queries = synthetic_queries(args.queries)
    elif stimuli_path is not None:
        rows = read_stimuli_file(stimuli_path)
        queries = tuple(QueryRef(r.query_id, r.category) for r in rows)
    else:
        raise PowerInputError(
            {"queries": "the spec names no stimuli file: give --queries N (how many queries)"}
        )
    planned = PlannedDesign(design_from_spec(spec), queries, spec.topic_choice, spec.seed)
    points = {q.key: q.scale.points for q in spec.questions}
    return planned, points


def _assumptions(args: argparse.Namespace, points: dict):
    path = Path(args.assumptions)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PowerInputError({"assumptions": f"cannot read {path}: {exc.strerror}"}) from None
    except yaml.YAMLError as exc:
        raise PowerInputError({"assumptions": f"{path} is not valid YAML: {exc}"}) from None
    if isinstance(data, dict) and args.measure:
        data = {**data, "measure": args.measure}
    a = assumptions_from_dict(data, source=str(path))
    if a.measure not in points:
        raise PowerInputError(
            {
                "measure": f"{a.measure!r} is not a question of this study "
                f"(questions: {', '.join(points)})"
            }
        )
    return a


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = power_settings(
            args.participants, args.simulations, args.alpha, args.seed, args.adjust
        )
        planned, points = _planned(args)
        assumptions = _assumptions(args, points)

        def progress(done: int, total: int) -> None:
            if args.progress and (done % max(1, total // 20) == 0 or done == total):
                print(f"{done}/{total} fits", file=sys.stderr, flush=True)

        result = run_power(planned, assumptions, settings, progress)
    except (PowerInputError, SpecError, StimuliFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.csv:
        Path(args.csv).write_text(power_csv(result), encoding="utf-8")
    if args.html:
        power_curve(result).write_html(args.html, include_plotlyjs=True, full_html=True)
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False))
    else:
        print(power_text(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
