"""Label every response of a plain CSV/JSONL file with a classifier; no study needed."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError, CommandParser

from modellab.classifiers import CLASSIFIERS, build_classifier
from modellab.classifiers.base import Classification, ClassifierInput
from modellab.classifiers.judge import DEFAULT_MAX_ATTEMPTS, JudgePromptError
from modellab.classifiers.labels import SCHEMES, THREE_WAY, UNPARSED, labels_of
from modellab.table_file import (
    Table,
    TableFileError,
    cell_text,
    read_table,
    render,
    table_format,
    write_atomically,
)
from studies.management.commands._as_user import actor_from, usable_model
from studies.text_checks import unstorable_character

# The judge is asked this many items at a time, so progress shows on a long file.
CHUNK = 200


def read_phrases(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError(f"{path} must be a mapping with keys refusal, partial, window")
    return data


def read_judge_prompt(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise CommandError(f"{path} is not UTF-8 text") from exc


def items_from(table: Table, prompt_column: str, response_column: str) -> list[ClassifierInput]:
    """The (prompt, response) of every record; CommandError naming each bad line and column."""
    table.require(prompt_column, response_column)
    problems: list[str] = []
    items = []
    for record in table.records:
        cells = {}
        for column in dict.fromkeys((prompt_column, response_column)):
            text = cell_text(record.values.get(column))
            if text is None:
                kind = type(record.values[column]).__name__
                problems.append(f"line {record.line}, column '{column}': must be text, not {kind}")
            elif not text.strip():
                problems.append(f"line {record.line}, column '{column}': is empty")
            cells[column] = text
        for column, value in record.values.items():
            if isinstance(value, str) and (reason := unstorable_character(value)):
                problems.append(f"line {record.line}, column '{column}': {reason}")
        if len(problems) == 0:
            items.append(
                ClassifierInput(prompt=cells[prompt_column], response=cells[response_column])
            )
    if problems:
        raise TableFileError(problems)
    return items


def rationale_of(result: Classification) -> str:
    """The rationale column; an unparsed item's carries the judge's raw answer, which the file
    has no other place for."""
    if result.label == UNPARSED:
        return f"{result.rationale}; raw answer: {result.raw!r}"
    return result.rationale


class Command(BaseCommand):
    help = (
        "Classify the responses of a CSV/JSONL file (string_match or an llm_judge model of the "
        "registry); writes the rows plus label and rationale columns."
    )
    # A file tool: the system checks would import every page's module (scipy and all), which
    # is most of its start-up time, for nothing it uses.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--input", required=True, metavar="FILE", help="a .csv or .jsonl file")
        parser.add_argument("--prompt-column", required=True, metavar="C")
        parser.add_argument("--response-column", required=True, metavar="C")
        parser.add_argument("--classifier", required=True, choices=CLASSIFIERS)
        parser.add_argument("--model", metavar="NAME", help="llm_judge: a registry model's name")
        parser.add_argument("--scheme", default=THREE_WAY, choices=SCHEMES)
        parser.add_argument(
            "--output", required=True, metavar="FILE", help=".csv or .jsonl (its format)"
        )
        parser.add_argument(
            "--as",
            dest="as_user",
            metavar="USER",
            help="llm_judge: the researcher whose registry models may be used (required there)",
        )
        parser.add_argument(
            "--judge-prompt", metavar="FILE", help="llm_judge: a judging prompt of your own"
        )
        parser.add_argument(
            "--max-attempts",
            type=int,
            metavar="N",
            help=f"llm_judge: tries per item before unparsed (default {DEFAULT_MAX_ATTEMPTS})",
        )
        parser.add_argument(
            "--phrases",
            metavar="FILE",
            help="string_match: YAML/JSON with refusal, partial, window",
        )
        parser.add_argument("--label-column", default="label", metavar="C")
        parser.add_argument("--rationale-column", default="rationale", metavar="C")

    def handle(self, *args, **options) -> None:
        classifier_name = options["classifier"]
        judge = classifier_name == "llm_judge"
        for option, for_judge in (
            ("model", True),
            ("judge_prompt", True),
            ("max_attempts", True),
            ("phrases", False),
        ):
            if options[option] is not None and judge != for_judge:
                flag = "--" + option.replace("_", "-")
                owner = "llm_judge" if for_judge else "string_match"
                raise CommandError(f"{flag} is for {owner} only")
        label_column, rationale_column = options["label_column"], options["rationale_column"]
        if label_column == rationale_column:
            raise CommandError("--label-column and --rationale-column must differ")

        source, target = Path(options["input"]), Path(options["output"])
        try:
            out_format = table_format(target)
        except TableFileError as exc:
            raise CommandError(f"--output {exc}") from None
        if not target.parent.is_dir():
            raise CommandError(f"--output {target}: the folder {target.parent} does not exist")
        if source.exists() and target.exists() and os.path.samefile(source, target):
            raise CommandError("--output must not be the input file")

        judge_model = None
        if judge:
            if not options["model"]:
                raise CommandError("llm_judge needs --model NAME: a model of the registry")
            if not options["as_user"]:
                raise CommandError("llm_judge needs --as USER: the researcher it acts for")
            actor = actor_from(options)
            judge_model = usable_model(actor, options["model"])
        elif options["as_user"]:
            actor_from(options)  # a named account must exist, even where nothing needs it

        try:
            table = read_table(source)
            items = items_from(table, options["prompt_column"], options["response_column"])
        except TableFileError as exc:
            exc.filename = exc.filename or str(source)
            raise CommandError(str(exc)) from None
        taken = [c for c in (label_column, rationale_column) if c in table.columns]
        if taken:
            names = " and ".join(repr(c) for c in taken)
            raise CommandError(
                f"the input already has {names}; name the new columns with "
                "--label-column/--rationale-column"
            )

        try:
            classifier = build_classifier(
                classifier_name,
                scheme=options["scheme"],
                judge_model=judge_model,
                judge_prompt=(
                    read_judge_prompt(options["judge_prompt"]) if options["judge_prompt"] else None
                ),
                phrases=read_phrases(options["phrases"]) if options["phrases"] else None,
                max_attempts=options["max_attempts"] or DEFAULT_MAX_ATTEMPTS,
            )
        except JudgePromptError as exc:
            raise CommandError(f"{options['judge_prompt']}: {exc}") from None
        except ValueError as exc:
            raise CommandError(str(exc)) from None

        results = []
        for start in range(0, len(items), CHUNK):
            results += classifier.classify(items[start : start + CHUNK])
            if judge and len(items) > CHUNK:
                self.stderr.write(f"  {len(results)}/{len(items)} classified")

        rows = [
            {**record.values, label_column: result.label, rationale_column: rationale_of(result)}
            for record, result in zip(table.records, results, strict=True)
        ]
        columns = [*table.columns, label_column, rationale_column]
        write_atomically(target, render(out_format, columns, rows))

        counts = Counter(result.label for result in results)
        self.stdout.write(
            f"{len(results)} responses classified with {classifier_name} ({options['scheme']}), "
            f"written to {target}"
        )
        width = max(len(label) for label in (*labels_of(options["scheme"]), UNPARSED))
        for label in (*labels_of(options["scheme"]), UNPARSED):
            self.stdout.write(f"  {label:<{width}}  {counts[label]}")
        if counts[UNPARSED]:
            self.stdout.write(
                f"{counts[UNPARSED]} unparsed: the judge's answer could not be read after "
                f"the last attempt; see their {rationale_column} column"
            )
