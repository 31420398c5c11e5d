"""Reading a job's categories and seed examples from the forms' text and from files."""

from __future__ import annotations

import json
from pathlib import Path

from modellab.table_file import TableFileError, read_upload, text_of

EXAMPLE_FIELDS = ("category", "topic", "query", "benign_scenario", "malicious_scenario")


class InputFileError(ValueError):
    """Text or a file that cannot be read; ``problems`` names each line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def categories_from_text(definitions: str, topics: str) -> list[dict]:
    """Categories from the form: one "name: definition" a line, and one "name: topic; topic"
    a line for the topics (a category may have several such lines)."""
    problems, categories = [], {}
    for number, line in enumerate((definitions or "").splitlines(), 1):
        if not line.strip():
            continue
        name, colon, definition = line.partition(":")
        if not colon or not name.strip() or not definition.strip():
            problems.append(f"categories, line {number}: write it as 'name: definition'")
            continue
        categories.setdefault(
            name.strip().casefold(),
            {"name": name.strip(), "definition": definition.strip(), "topics": []},
        )
    for number, line in enumerate((topics or "").splitlines(), 1):
        if not line.strip():
            continue
        name, colon, listed = line.partition(":")
        category = categories.get(name.strip().casefold())
        if not colon:
            problems.append(f"topics, line {number}: write it as 'category: topic; topic'")
        elif category is None:
            problems.append(f"topics, line {number}: no category named {name.strip()!r} above")
        else:
            category["topics"] += [t.strip() for t in listed.split(";") if t.strip()]
    if problems:
        raise InputFileError(problems)
    return list(categories.values())


def examples_from_upload(data: bytes, filename: str) -> list[dict]:
    """Seed examples from a CSV or JSONL file (or the form's JSONL text, as bytes): the
    columns category, topic, query, benign_scenario, malicious_scenario (query_id ignored)."""
    if not data.strip():
        return []
    try:
        table = read_upload(data, filename)
    except TableFileError as exc:
        raise InputFileError(exc.shown()) from None
    return [
        {field: text_of(record.values.get(field)) for field in EXAMPLE_FIELDS}
        for record in table.records
    ]


def categories_from_file(path: str | Path) -> list:
    """Categories from a .json file (an array of {name, definition, topics}) or a .jsonl file
    (one such object a line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError([f"cannot read {path}: {exc}"]) from None
    if path.suffix.lower() == ".jsonl":
        categories, problems = [], []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                categories.append(json.loads(line))
            except json.JSONDecodeError as exc:
                problems.append(f"{path.name}, line {number}: not valid JSON ({exc.msg})")
        if problems:
            raise InputFileError(problems)
        return categories
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(
            [f"{path.name}, line {exc.lineno}: not valid JSON ({exc.msg})"]
        ) from None
    if not isinstance(data, list):
        raise InputFileError([f"{path.name}: must hold a JSON array of categories"])
    return data
