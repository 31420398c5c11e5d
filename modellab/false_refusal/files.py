"""Reading a CSV or JSONL file into rows with their line numbers, for prompt sets and labels."""

from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")
# Prompts (PHTest's longest is under 1,000 characters) are far below this; csv's own default
# field limit (131,072) would reject a long response in an evaluation file.
FIELD_LIMIT = 10_000_000


class TableError(ValueError):
    """A file that cannot be read as a table; the message says where and why."""


@dataclass(frozen=True)
class Row:
    """One record: the line it starts on (the header is line 1 of a CSV) and its cells."""

    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    def require(self, *columns: str) -> None:
        """TableError naming every missing column and the ones the file has."""
        missing = [c for c in columns if c and c not in self.columns]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            have = ", ".join(repr(c) for c in self.columns) or "none"
            raise TableError(f"no column {names} in the file; its columns are: {have}")


def file_format(filename: str, text: str) -> str:
    """``csv`` or ``jsonl``, by extension, else by the first character (``{`` is JSONL)."""
    suffix = Path(filename).suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped); TableError naming the line of a bad byte."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(
            f"line {line}: the file is not valid UTF-8 (byte {exc.start}); save it as UTF-8"
        ) from None


def read_table(data: bytes | str, filename: str) -> Table:
    """Parse a CSV (comma or, for .tsv, tab) or JSONL file; TableError for anything unreadable.

    Every cell comes back as text (JSON numbers and booleans as written, null as ""), so a
    JSONL ``"id": 7`` and a CSV ``7`` are the same id.
    """
    text = decode(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    if not text.strip():
        raise TableError("the file is empty")
    if file_format(filename, text) == "jsonl":
        table = _jsonl(text)
    else:
        table = _csv(text, "\t" if filename.lower().endswith(".tsv") else ",")
    if not table.rows:
        raise TableError("the file has a header but no data rows")
    return table


def _csv(text: str, delimiter: str) -> Table:
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise TableError(f"line 1: not valid CSV ({exc})") from None
    columns = [c.strip() for c in header]
    if not any(columns):
        raise TableError("line 1: the header row is empty")
    duplicates = sorted({c for c in columns if c and columns.count(c) > 1})
    if duplicates:
        raise TableError(f"line 1: the column(s) {', '.join(duplicates)} appear twice")
    rows = []
    start = reader.line_num + 1
    try:
        for record in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in record):
                continue  # a blank line between records
            if len(record) > len(columns):
                raise TableError(
                    f"line {line}: {len(record)} cells but the header has {len(columns)} columns"
                )
            values = {c: record[i] if i < len(record) else "" for i, c in enumerate(columns)}
            rows.append(Row(line, values))
    except csv.Error as exc:
        raise TableError(f"line {start}: not valid CSV ({exc})") from None
    return Table(tuple(columns), tuple(rows))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


def _jsonl(text: str) -> Table:
    columns: dict[str, None] = {}
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TableError(
                f"line {number}: not valid JSON ({exc.msg}, column {exc.colno})"
            ) from None
        if not isinstance(record, dict):
            raise TableError(f"line {number}: each line must be a JSON object, not {line[:40]!r}")
        values = {str(k): _cell(v) for k, v in record.items()}
        columns.update(dict.fromkeys(values))
        rows.append(Row(number, values))
    # A key some lines lack reads as "" on those lines, as an empty CSV cell would.
    names = tuple(columns)
    rows = [Row(r.line, {c: r.values.get(c, "") for c in names}) for r in rows]
    return Table(names, tuple(rows))
