"""The replication package's own files: spec, stimuli, analysis (JSON and HTML) and README.

The analysis is computed from the package's data/ratings.csv by the command line's own code
(studies.analysis.__main__.report_for) with the options the README prints, so running that
command on the unpacked package reproduces analysis.json number for number.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from studies import selectors
from studies.datasets.tables import TABLE_DESCRIPTIONS
from studies.models import Study
from studies.spec import dump_spec
from studies.stimuli_export import write_stimuli

SPEC = "spec.yaml"
STIMULI = "stimuli.csv"
RATINGS_CSV = "data/ratings.csv"


def analysis_argv(inclusion: str) -> list[str]:
    """The analysis command's arguments, relative to the unpacked package's folder."""
    return [RATINGS_CSV, "--json", "--spec", SPEC, "--include", inclusion]


def analysis_command(inclusion: str) -> str:
    return "python -m studies.analysis " + " ".join(analysis_argv(inclusion))


def compute_analysis(folder: Path, inclusion: str) -> dict:
    """The report the README's command prints, computed from the package's own files."""
    from studies.analysis.__main__ import parse_args, report_for

    argv = analysis_argv(inclusion)
    argv[0] = str(folder / RATINGS_CSV)
    argv[argv.index("--spec") + 1] = str(folder / SPEC)
    return report_for(parse_args(argv))


def _readme(study: Study, options, files: list[str], analysis_error: str | None) -> str:
    fmt = options.export_format
    table_lines = [
        f"- `{path}`: {TABLE_DESCRIPTIONS[Path(path).stem]}"
        + (
            " (CSV copy: what the analysis command reads)"
            if path == RATINGS_CSV and fmt != "csv"
            else ""
        )
        for path in files
        if path.startswith("data/")
    ]
    analysis = (
        [
            "- `analysis.json`: every number of the analysis (descriptives, mixed models, gap "
            "reductions, reliability), as the command below prints it.",
            "- `report.html`: the same analysis as one self-contained HTML page (figures and "
            "tables; opens offline).",
        ]
        if analysis_error is None
        else [f"- `analysis.json`: the analysis could not run on these data: {analysis_error}"]
    )
    return "\n".join(
        [
            f"# Replication package: {study.title}",
            "",
            f"Study `{study.slug}`, exported by RefusalLab. Participants counted: "
            f"`{options.inclusion}` rule (see `codebook.md`); withdrawn participants never "
            "appear. Participants appear only under a pseudonymous id"
            + (
                "; this package also holds their recruitment ids (personal data: keep it safe)."
                if options.include_recruitment_ids
                else "."
            ),
            "",
            "## Files",
            "",
            f"- `{SPEC}`: the study's design (factors, questions, scales, response rule, "
            "analysis settings) in the spec format RefusalLab imports.",
            f"- `{STIMULI}`: the queries, scenarios and approved response texts, in the format "
            "RefusalLab imports (named by the spec).",
            *table_lines,
            "- `codebook.json`, `codebook.md`: every column of every table with its type and "
            "meaning, every question with its text, scale, anchors, construct and reverse coding, "
            "every factor with its levels, and the inclusion rule.",
            *analysis,
            "- `MANIFEST.sha256`: the SHA-256 of every other file; check with "
            "`sha256sum -c MANIFEST.sha256`.",
            "",
            "## Reproduce",
            "",
            "From this folder, with RefusalLab installed (its checkout's environment):",
            "",
            "```sh",
            "sha256sum -c MANIFEST.sha256",
            f"{analysis_command(options.inclusion)} > analysis-again.json",
            "```",
            "",
            "`analysis-again.json` equals `analysis.json` except `meta.timings` (seconds taken).",
            "",
            "To recreate the study's design (and its stimuli) in a RefusalLab instance:",
            "",
            "```sh",
            f"python manage.py import_study {SPEC} --as USER",
            "```",
            "",
        ]
    )


def write_package_files(study: Study, folder: Path, options, built) -> list[str]:
    """Write spec.yaml, stimuli.csv, analysis.json, report.html and README.md into folder."""
    from studies.analysis.frame import AnalysisInputError

    spec = dataclasses.replace(selectors.study_spec(study), stimuli=STIMULI)
    (folder / SPEC).write_text(dump_spec(spec), encoding="utf-8")
    with open(folder / STIMULI, "w", newline="", encoding="utf-8") as handle:
        write_stimuli(study, handle, "csv")
    files = [SPEC, STIMULI]
    error = None
    try:
        report = compute_analysis(folder, options.inclusion)
    except AnalysisInputError as exc:
        error = str(exc)
        report = {"error": error}
    (folder / "analysis.json").write_text(
        json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    files.append("analysis.json")
    if error is None:
        from studies.analysis.html_report import render_html_report

        (folder / "report.html").write_text(
            render_html_report(report, study.title), encoding="utf-8"
        )
        files.append("report.html")
    files.append("README.md")
    (folder / "README.md").write_text(
        _readme(study, options, [*built.files, *files], error), encoding="utf-8"
    )
    return files
