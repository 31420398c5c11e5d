"""Pure parsing of "wide" stimuli files (CSV or JSONL): one row per query, one column per type."""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from studies.domain import MOTIVATION_LEVELS, RESPONSE_TYPES, SCENARIO_COLUMNS, scenario_column
from studies.text_checks import unstorable_character

# One scenario column per motivation level (benign_scenario, malicious_scenario).
REQUIRED_COLUMNS: tuple[str, ...] = ("query_id", "query", "category", *SCENARIO_COLUMNS)
OPTIONAL_COLUMNS: tuple[str, ...] = ("topic",)
KNOWN_COLUMNS: frozenset[str] = frozenset(REQUIRED_COLUMNS + OPTIONAL_COLUMNS + RESPONSE_TYPES)

# Mirrors the column sizes of studies.models.Query so an import never fails at the database.
MAX_LENGTHS: dict[str, int] = {"query_id": 64, "category": 64, "topic": 200}

# Report at most this many problems: a wrong file can otherwise produce one per cell.
MAX_PROBLEMS = 200


@dataclass(frozen=True)
class StimulusRow:
    query_id: str
    query: str
    category: str
    topic: str
    benign_scenario: str
    malicious_scenario: str
    responses: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    line: int = 0

    @property
    def scenarios(self) -> dict[str, str]:
        """The scenario text for each motivation level."""
        return {m: getattr(self, scenario_column(m)) for m in MOTIVATION_LEVELS}


class StimuliFileError(Exception):
    """A stimuli file that cannot be imported; ``problems`` lists every reason found."""

    def __init__(self, problems: list[str], filename: str = "") -> None:
        self.problems = list(problems)
        self.filename = filename
        super().__init__(str(self))

    def __str__(self) -> str:
        head = f"{self.filename}: " if self.filename else ""
        if len(self.problems) == 1:
            return f"{head}{self.problems[0]}"
        lines = [f"{head}{len(self.problems)} problems:"]
        lines.extend(f"  {p}" for p in self.problems)
        return "\n".join(lines)


def parse_stimuli(data: bytes | str, filename: str) -> list[StimulusRow]:
    """Parse a CSV or JSONL stimuli file (chosen by ``filename``'s extension) into rows.

    Raises StimuliFileError listing every problem found; returns nothing partial.
    """
    if isinstance(data, str):
        # Encoded back so text and bytes take one path; "surrogatepass" keeps a lone
        # surrogate for the UTF-8 check to report instead of failing here.
        data = data.encode("utf-8", "surrogatepass")
    return list(iter_stimuli(io.BytesIO(data), filename))


def read_stimuli_file(path: str | Path) -> list[StimulusRow]:
    """Read and parse a stimuli file from disk."""
    return list(stream_stimuli_file(path))


def stream_stimuli_file(path: str | Path) -> Iterator[StimulusRow]:
    """The rows of a stimuli file on disk, read line by line (see iter_stimuli)."""
    path = Path(path)
    try:
        with path.open("rb") as lines:
            yield from iter_stimuli(lines, str(path))
    except OSError as exc:
        raise StimuliFileError(
            [f"cannot read the file: {exc.strerror or exc}"], str(path)
        ) from None


def iter_stimuli(lines: Iterable[bytes], filename: str) -> Iterator[StimulusRow]:
    """The rows of a CSV or JSONL file given as its lines of bytes, as they are read.

    Rows come out only while the file has shown no problem; after one, the rest is still read
    so that every problem is reported, and StimuliFileError is raised at the end. A consumer
    that writes rows as they come must therefore do so in a transaction (as
    studies.services.import_stimuli does), or collect them first (as parse_stimuli does).
    """
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        shown = suffix or "(no extension)"
        raise StimuliFileError(
            [f"unsupported file type {shown}; use a .csv or .jsonl file"], filename
        )
    reading = _Reading()
    text = _text_lines(lines, reading, split_lone_cr=suffix == ".csv")
    if suffix == ".csv":
        records = _csv_records(text, reading.problems)
    else:
        records = _jsonl_records(text, reading)
    rows = 0
    for row in _build_rows(records, reading.problems):
        rows += 1
        if not reading.problems:
            yield row
    problems = reading.problems
    if not reading.content and not reading.unreadable:
        problems = ["the file is empty"]
    elif reading.missing_columns:
        # A column no line has: saying so replaces the same complaint on every line.
        problems = reading.syntax_problems + reading.missing_columns
    elif not problems and not rows:
        problems = ["the file has no data rows"]
    if problems:
        if len(problems) > MAX_PROBLEMS:
            extra = len(problems) - MAX_PROBLEMS
            problems = problems[:MAX_PROBLEMS] + [f"... and {extra} more problem(s)"]
        raise StimuliFileError(problems, filename)


def row_text_problems(row: StimulusRow) -> list[str]:
    """Cells of a row that cannot be stored or shown as they are (see studies.text_checks)."""
    problems = []
    cells = {
        "query_id": row.query_id,
        "query": row.query,
        "category": row.category,
        "topic": row.topic,
        **{scenario_column(m): text for m, text in row.scenarios.items()},
        **row.responses,
    }
    for column, value in cells.items():
        if reason := unstorable_character(value):
            problems.append(f"line {row.line}, column '{column}': {reason}")
    for key, value in row.metadata.items():
        if reason := unstorable_character(key):
            problems.append(f"line {row.line}: the field name {key!r} {reason}")
        elif reason := unstorable_character(value):
            problems.append(f"line {row.line}, column '{key}': {reason}")
    return problems


# A record is (line, {column: value}); values are already text, or None where absent.
_Record = tuple[int, dict[str, str | None]]

# A carriage return not followed by a line feed ends a line too (old Mac files); lines are
# split on b"\n" while reading, so the CSV reader gets these split off as well.
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")


@dataclass
class _Reading:
    """What reading one file has found so far."""

    problems: list[str] = field(default_factory=list)
    # JSON syntax problems, kept when missing columns replace the per-line ones.
    syntax_problems: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    content: bool = False  # anything but whitespace seen
    unreadable: bool = False  # not UTF-8: reading stopped


def _text_lines(lines: Iterable[bytes], reading: _Reading, *, split_lone_cr: bool) -> Iterator[str]:
    offset = 0
    for number, raw in enumerate(lines, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
            offset = len(codecs.BOM_UTF8)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            reading.unreadable = True
            reading.problems.append(
                f"line {number}: the file is not valid UTF-8 (byte {offset + exc.start}); "
                "save it as UTF-8"
            )
            return
        offset += len(raw)
        if not reading.content and line.strip():
            reading.content = True
        if split_lone_cr and "\r" in line and not (line.endswith("\r\n") and line.count("\r") == 1):
            yield from (part for part in _LONE_CR.split(line) if part)
        else:
            yield line


def _canonical_column(name: str) -> str:
    # Spreadsheets love "Query_ID " headers; match known columns leniently, keep others as written.
    stripped = name.strip()
    return stripped.lower() if stripped.lower() in KNOWN_COLUMNS else stripped


def _missing_columns(columns: set[str]) -> list[str]:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    missing_types = [t for t in RESPONSE_TYPES if t not in columns]
    problems = []
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if missing_types:
        problems.append(
            f"missing response-type column(s): {', '.join(missing_types)} "
            "(cells may be empty, but every response-type column must be present)"
        )
    return problems


def _csv_records(lines: Iterator[str], problems: list[str]) -> Iterator[_Record]:
    reader = csv.reader(lines)
    header: list[str] | None = None
    end_of_previous = 0
    try:
        for raw in reader:
            # A record can span lines (quoted newlines); it starts right after the previous one.
            start = end_of_previous + 1
            end_of_previous = reader.line_num
            if not raw or all(not cell.strip() for cell in raw):
                continue
            if header is None:
                header = [_canonical_column(h) for h in raw]
                seen: set[str] = set()
                for number, name in enumerate(header, start=1):
                    if not name:
                        problems.append(f"line {start}: the header has an empty column name")
                    elif reason := unstorable_character(name):
                        problems.append(f"line {start}, column {number}: the column name {reason}")
                    elif name in seen:
                        problems.append(f"line {start}: column '{name}' appears more than once")
                    seen.add(name)
                if not problems:
                    problems.extend(_missing_columns(set(header)))
                if problems:
                    return
                continue
            if len(raw) != len(header):
                problems.append(
                    f"line {start}: has {len(raw)} value(s) but the header has "
                    f"{len(header)} column(s)"
                )
                continue
            yield start, dict(zip(header, raw, strict=True))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV: {exc}")


def _jsonl_records(lines: Iterator[str], reading: _Reading) -> Iterator[_Record]:
    problems = reading.problems
    columns: set[str] = set()
    # Lines were split on "\n" only: JSON strings may hold a raw U+2028, which is no line end.
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problem = f"line {number}: not valid JSON: {exc.msg} (column {exc.colno})"
            problems.append(problem)
            reading.syntax_problems.append(problem)
            continue
        if not isinstance(obj, dict):
            problem = f"line {number}: expected a JSON object, found {_json_kind(obj)}"
            problems.append(problem)
            reading.syntax_problems.append(problem)
            continue
        obj = {_canonical_column(str(k)): v for k, v in obj.items()}
        columns.update(obj)
        values = {key: _json_text(key, value, number, problems) for key, value in obj.items()}
        # A line with an unusable field is already reported; checking it further adds noise.
        if all(v is not None for v in values.values()):
            yield number, values
    # A JSONL "column" exists when any line has the key, mirroring a CSV header.
    if columns:
        reading.missing_columns = _missing_columns(columns)


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return "a string"


def _json_text(key: str, value: object, line: int, problems: list[str]) -> str | None:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # Numeric ids (7 instead of "q07") are common in JSONL exports; keep their text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if key not in KNOWN_COLUMNS:
        # Extra fields are only carried along, so structured values are kept as JSON text.
        return json.dumps(value, ensure_ascii=False)
    problems.append(f"line {line}: field '{key}' must be text, found {_json_kind(value)}")
    return None


def _build_rows(records: Iterator[_Record], problems: list[str]) -> Iterator[StimulusRow]:
    first_line: dict[str, int] = {}
    for line, values in records:
        cleaned = {k: (v or "").strip() for k, v in values.items()}
        query_id = cleaned.get("query_id", "")
        where = f"line {line} (query_id {query_id})" if query_id else f"line {line}"
        ok = True
        for column in REQUIRED_COLUMNS:
            if not cleaned.get(column):
                problems.append(f"{where}: column '{column}' is empty")
                ok = False
        for column, limit in MAX_LENGTHS.items():
            if len(cleaned.get(column, "")) > limit:
                problems.append(f"{where}: column '{column}' is longer than {limit} characters")
                ok = False
        for column, value in cleaned.items():
            if reason := unstorable_character(column):
                problems.append(f"line {line}: the field name {column!r} {reason}")
                ok = False
            elif reason := unstorable_character(value):
                problems.append(f"line {line}, column '{column}': {reason}")
                ok = False
        if query_id:
            if query_id in first_line:
                problems.append(
                    f"line {line}: duplicate query_id '{query_id}' "
                    f"(first on line {first_line[query_id]})"
                )
                ok = False
            else:
                first_line[query_id] = line
        if not ok:
            continue
        yield StimulusRow(
            query_id=query_id,
            query=cleaned["query"],
            category=cleaned["category"],
            topic=cleaned.get("topic", ""),
            **{column: cleaned[column] for column in SCENARIO_COLUMNS},
            responses={t: cleaned[t] for t in RESPONSE_TYPES if cleaned.get(t)},
            metadata={k: v for k, v in cleaned.items() if k not in KNOWN_COLUMNS and v},
            line=line,
        )
