"""Pure parsing of "wide" stimuli files (CSV or JSONL): one row per query, one column per type."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from studies.domain import MOTIVATION_LEVELS, RESPONSE_TYPES, SCENARIO_COLUMNS, scenario_column

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
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        shown = suffix or "(no extension)"
        raise StimuliFileError(
            [f"unsupported file type {shown}; use a .csv or .jsonl file"], filename
        )

    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise StimuliFileError(
                [f"the file is not valid UTF-8 (byte {exc.start}); save it as UTF-8"], filename
            ) from None
    else:
        text = data.removeprefix("\ufeff")

    if not text.strip():
        raise StimuliFileError(["the file is empty"], filename)

    problems: list[str] = []
    records = _csv_records(text, problems) if suffix == ".csv" else _jsonl_records(text, problems)
    rows = _build_rows(records, problems)
    if not problems and not rows:
        problems.append("the file has no data rows")
    if problems:
        if len(problems) > MAX_PROBLEMS:
            extra = len(problems) - MAX_PROBLEMS
            problems = problems[:MAX_PROBLEMS] + [f"... and {extra} more problem(s)"]
        raise StimuliFileError(problems, filename)
    return rows


def read_stimuli_file(path: str | Path) -> list[StimulusRow]:
    """Read and parse a stimuli file from disk."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StimuliFileError(
            [f"cannot read the file: {exc.strerror or exc}"], str(path)
        ) from None
    return parse_stimuli(data, str(path))


# A record is (line, {column: value}); values are already text, or None where absent.
_Record = tuple[int, dict[str, str | None]]


def _canonical_column(name: str) -> str:
    # Spreadsheets love "Query_ID " headers; match known columns leniently, keep others as written.
    stripped = name.strip()
    return stripped.lower() if stripped.lower() in KNOWN_COLUMNS else stripped


def _check_columns(columns: set[str], problems: list[str]) -> bool:
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    missing_types = [t for t in RESPONSE_TYPES if t not in columns]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if missing_types:
        problems.append(
            f"missing response-type column(s): {', '.join(missing_types)} "
            "(cells may be empty, but every response-type column must be present)"
        )
    return not missing and not missing_types


def _csv_records(text: str, problems: list[str]) -> Iterator[_Record]:
    reader = csv.reader(io.StringIO(text, newline=""))
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
                for name in header:
                    if not name:
                        problems.append(f"line {start}: the header has an empty column name")
                    elif name in seen:
                        problems.append(f"line {start}: column '{name}' appears more than once")
                    seen.add(name)
                if problems or not _check_columns(set(header), problems):
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


def _jsonl_records(text: str, problems: list[str]) -> Iterator[_Record]:
    parsed: list[tuple[int, dict]] = []
    columns: set[str] = set()
    # split("\n"), not splitlines(): JSON strings may hold a raw U+2028, which is not a line end.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {number}: expected a JSON object, found {_json_kind(obj)}")
            continue
        obj = {_canonical_column(str(k)): v for k, v in obj.items()}
        columns.update(obj)
        parsed.append((number, obj))
    # A JSONL "column" exists when any line has the key, mirroring a CSV header.
    if parsed and not _check_columns(columns, problems):
        return
    for number, obj in parsed:
        values = {key: _json_text(key, value, number, problems) for key, value in obj.items()}
        # A line with an unusable field is already reported; checking it further adds noise.
        if all(v is not None for v in values.values()):
            yield number, values


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


def _build_rows(records: Iterator[_Record], problems: list[str]) -> list[StimulusRow]:
    rows: list[StimulusRow] = []
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
        rows.append(
            StimulusRow(
                query_id=query_id,
                query=cleaned["query"],
                category=cleaned["category"],
                topic=cleaned.get("topic", ""),
                **{column: cleaned[column] for column in SCENARIO_COLUMNS},
                responses={t: cleaned[t] for t in RESPONSE_TYPES if cleaned.get(t)},
                metadata={k: v for k, v in cleaned.items() if k not in KNOWN_COLUMNS and v},
                line=line,
            )
        )
    return rows
