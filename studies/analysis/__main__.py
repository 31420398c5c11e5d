"""Command line: python -m studies.analysis ratings.csv [--json] [options]; exit 2 on bad input."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from studies.analysis.frame import AnalysisInputError, read_long_format
from studies.analysis.report import ReportOptions, build_report
from studies.analysis.text import format_report
from studies.domain import INCLUSION_RULES


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _column_map(pairs: Sequence[str]) -> dict[str, str]:
    """--map their=ours (repeatable, or comma-separated) as {their: ours}."""
    out: dict[str, str] = {}
    for pair in (p for arg in pairs for p in _split(arg)):
        theirs, sep, ours = pair.partition("=")
        if not sep or not theirs.strip() or not ours.strip():
            raise AnalysisInputError(f"--map expects their_column=our_column, got {pair!r}")
        out[theirs.strip()] = ours.strip()
    return out


def _composite(text: str) -> tuple[str, dict]:
    """'negative=frustration,disturbance;reverse=disturbance' as (name, spec)."""
    head, *rest = [part.strip() for part in text.split(";")]
    name, sep, items = head.partition("=")
    if not sep or not name.strip() or not _split(items):
        raise AnalysisInputError(
            f"--composite expects name=item,item[;reverse=item,...], got {text!r}"
        )
    spec: dict = {"items": _split(items)}
    for part in rest:
        key, sep, value = part.partition("=")
        if key.strip() == "reverse" and sep:
            spec["reverse_coded"] = _split(value)
        elif key.strip() == "points" and sep and value.strip().isdigit():
            spec["points"] = int(value)
        else:
            raise AnalysisInputError(f"--composite: unknown part {part!r} (reverse=, points=)")
    return name.strip(), spec


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m studies.analysis",
        description="Analyse ratings in RefusalLab's long format (CSV).",
    )
    parser.add_argument("path", help="CSV file, one row per participant × item × question")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument(
        "--spec",
        help="study spec (YAML/JSON): reference and baseline levels, measures, composites, "
        "constructs, reverse coding, scale points and seed as the platform analyses them",
    )
    parser.add_argument(
        "--reference", help="reference response type (default: the spec's, else full_compliance)"
    )
    parser.add_argument(
        "--baseline", help="baseline refusal type (default: the spec's, else direct_refusal)"
    )
    parser.add_argument("--measures", help="comma-separated questions to analyse (default: all)")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="THEIRS=OURS",
        help="rename a column, e.g. --map pid=participant_id (repeatable)",
    )
    parser.add_argument(
        "--include",
        default="included",
        help="inclusion rule: included (completed, not excluded), completed or all; or "
        "participant statuses to keep, comma-separated (default: included)",
    )
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, help="bootstrap seed (default: the spec's, else 0)")
    parser.add_argument(
        "--composite",
        action="append",
        default=[],
        metavar="SPEC",
        help="composite measure 'name=item,item[;reverse=item]' (repeatable)",
    )
    return parser.parse_args(argv)


def _spec_options(path: str, inclusion) -> ReportOptions:
    from studies.analysis.spec_options import options_from_spec
    from studies.spec import SpecError, load_spec

    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnalysisInputError(f"--spec: cannot read {path}: {exc}") from exc
    try:
        # load_spec, not load_spec_file: the spec's stimuli file is not needed here.
        return options_from_spec(load_spec(text, path), inclusion=inclusion)
    except SpecError as exc:
        raise AnalysisInputError(f"--spec: {exc}") from exc


def report_for(args: argparse.Namespace) -> dict:
    """The report the command prints (AnalysisInputError on bad input); a replication package
    computes its analysis through this very function."""
    if args.bootstrap < 0:
        raise AnalysisInputError("--bootstrap must be 0 or more")
    frame = read_long_format(args.path, _column_map(args.map), keep_attention=True)
    include = _split(args.include)
    inclusion = include[0] if len(include) == 1 and include[0] in INCLUSION_RULES else None
    measures = _split(args.measures) if args.measures else None
    questions = set(frame.loc[frame["kind"] == "stimulus", "question"])
    unknown = [m for m in measures or [] if m not in questions]
    if unknown:
        # On the command line an unknown measure is a typo; say so instead of warning.
        raise AnalysisInputError(
            f"--measures names {', '.join(unknown)}, not in the data (questions: "
            f"{', '.join(sorted(questions))})"
        )
    if args.spec:
        options = _spec_options(args.spec, inclusion or tuple(include))
    else:
        options = ReportOptions(inclusion=inclusion or tuple(include))
    if args.reference:
        options.reference_level = args.reference
    if args.baseline:
        options.baseline_level = args.baseline
    if measures:
        options.measures = measures
    if args.composite:
        options.composites = dict(_composite(c) for c in args.composite)
    if args.seed is not None:
        options.seed = args.seed
    options.bootstrap_reps = args.bootstrap
    return build_report(frame, options)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = report_for(args)
    except AnalysisInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False))
    else:
        print(format_report(report), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
