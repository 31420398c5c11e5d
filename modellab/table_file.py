"""Reading CSV/JSONL tables (files to label, prompt sets, label files) and writing them back."""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from studies.text_checks import unstorable_character

FORMATS = {".csv": "csv", ".jsonl": "jsonl"}
# An upload may come under any name: these extensions are known, others are told by content.
UPLOAD_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DELIMITERS = {"csv": ",", "tsv": "\t"}
# csv's default field limit (131,072 characters) would reject a long model response.
FIELD_LIMIT = 50_000_000
# A wrong file can produce one problem per cell; the first ones say enough.
MAX_PROBLEMS = 20


class TableFileError(ValueError):
    """A file that cannot be read or written as a table; lists every problem found."""

    def __init__(self, problems: list[str], filename: str = "") -> None:
        self.problems = list(problems)
        self.filename = filename
        super().__init__(str(self))

    def shown(self) -> list[str]:
        """The first MAX_PROBLEMS problems, and a line saying how many more there are."""
        shown = self.problems[:MAX_PROBLEMS]
        if len(self.problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(self.problems) - MAX_PROBLEMS} more problem(s)")
        return shown

    def __str__(self) -> str:
        head = f"{self.filename}: " if self.filename else ""
        shown = self.shown()
        if len(shown) == 1:
            return f"{head}{shown[0]}"
        return "\n".join([f"{head}{len(self.problems)} problems:", *(f"  {p}" for p in shown)])


@dataclass(frozen=True)
class Record:
    """One row and the line it starts on. CSV values are text; JSONL values stay as parsed
    (so that numbers and lists are written back as they came)."""

    line: int
    values: dict[str, object]


@dataclass(frozen=True)
class Table:
    format: str
    columns: tuple[str, ...]
    records: tuple[Record, ...]

    def require(self, *columns: str) -> None:
        """TableFileError naming every missing column (empty names skipped) and those there are."""
        missing = [c for c in dict.fromkeys(columns) if c and c not in self.columns]
        if missing:
            names = ", ".join(repr(c) for c in missing)
            have = ", ".join(repr(c) for c in self.columns) or "none"
            raise TableFileError([f"no column {names} in the file; its columns are: {have}"])

    def as_text(self) -> Table:
        """The same records with every column's value as text (see ``text_of``; a key a JSONL
        line lacks is "", as an empty CSV cell would be), so a JSONL ``7`` and a CSV ``7`` are
        the same id."""
        records = tuple(
            Record(r.line, {c: text_of(r.values.get(c)) for c in self.columns})
            for r in self.records
        )
        return Table(format=self.format, columns=self.columns, records=records)


def table_format(path: str | Path) -> str:
    """``csv`` or ``jsonl`` by the file's extension; TableFileError for any other."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        shown = suffix or "no extension"
        raise TableFileError(
            [f"unsupported file type ({shown}); use a .csv or .jsonl file"], str(path)
        )
    return FORMATS[suffix]


def upload_format(filename: str, text: str) -> str:
    """``csv``, ``tsv`` or ``jsonl`` by the name's extension, else by the first character
    (``{`` is JSONL): an uploaded file's name is whatever the browser sent."""
    suffix = Path(filename).suffix.lower()
    if suffix in UPLOAD_FORMATS:
        return UPLOAD_FORMATS[suffix]
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def decode(data: bytes) -> str:
    """UTF-8 text (a byte-order mark dropped); TableFileError naming the line of a bad byte."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TableFileError(
            [f"line {line}: the file is not valid UTF-8 (byte {exc.start}); save it as UTF-8"]
        ) from None


def read_table(path: str | Path) -> Table:
    """Every record of a .csv (header row first) or .jsonl (one object a line) file, or
    TableFileError naming the file and each bad line; a file with no data rows is an error too."""
    kind = table_format(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TableFileError([f"cannot read the file: {exc.strerror or exc}"], str(path)) from None
    try:
        return parse_table(decode(data), kind)
    except TableFileError as exc:
        exc.filename = str(path)
        raise


def read_upload(data: bytes, filename: str) -> Table:
    """An uploaded CSV, TSV or JSONL file (format by ``upload_format``), as ``read_table``."""
    text = decode(data)
    return parse_table(text, upload_format(filename, text))


def parse_table(text: str, kind: str) -> Table:
    """The records of ``text`` as ``kind`` (csv, tsv or jsonl); TableFileError listing every
    bad line, or saying the file is empty or has no data rows."""
    problems: list[str] = []
    if kind == "jsonl":
        columns, records = _jsonl(text, problems)
    else:
        columns, records = _csv(text, DELIMITERS[kind], problems)
    if not problems and not records:
        problems.append("the file is empty" if not text.strip() else "the file has no data rows")
    if problems:
        raise TableFileError(problems)
    return Table(format=kind, columns=tuple(columns), records=tuple(records))


def _csv(text: str, delimiter: str, problems: list[str]) -> tuple[list[str], list[Record]]:
    csv.field_size_limit(FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    records: list[Record] = []
    end_of_previous = 0
    try:
        for raw in reader:
            # A record can span lines (quoted newlines); it starts right after the previous one.
            start, end_of_previous = end_of_previous + 1, reader.line_num
            if not raw or all(not cell.strip() for cell in raw):
                continue
            if header is None:
                header = [name.strip() for name in raw]
                seen: set[str] = set()
                for number, name in enumerate(header, start=1):
                    if not name:
                        problems.append(f"line {start}: column {number} of the header has no name")
                    elif reason := unstorable_character(name):
                        problems.append(f"line {start}, column {number}: the name {reason}")
                    elif name in seen:
                        problems.append(f"line {start}: column '{name}' appears more than once")
                    seen.add(name)
                if problems:
                    return [], []
                continue
            if len(raw) != len(header):
                problems.append(
                    f"line {start}: has {len(raw)} value(s) but the header has "
                    f"{len(header)} column(s)"
                )
                continue
            records.append(Record(line=start, values=dict(zip(header, raw, strict=True))))
    except csv.Error as exc:
        problems.append(f"line {reader.line_num}: not valid CSV: {exc}")
    return header or [], records


def _jsonl(text: str, problems: list[str]) -> tuple[list[str], list[Record]]:
    columns: dict[str, None] = {}
    records: list[Record] = []
    # Split on "\n" only: a JSON string may hold a raw U+2028, which is no line end.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(obj, dict):
            problems.append(
                f"line {number}: expected a JSON object, found {type(obj).__name__}; "
                "each line must be a JSON object"
            )
            continue
        columns.update(dict.fromkeys(obj))
        records.append(Record(line=number, values=obj))
    return list(columns), records


def text_of(value: object) -> str:
    """Any JSON value as text: null as "", booleans as true/false, numbers as written, lists
    and objects as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = cell_text(value)
    return text if text is not None else json.dumps(value, ensure_ascii=False)


def cell_text(value: object) -> str | None:
    """A cell as text: strings as they are, numbers as written, null as empty; None for a
    list, object or boolean (not text a prompt or response can be)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def render(kind: str, columns: Iterable[str], rows: Iterable[dict[str, object]]) -> str:
    """The rows as CSV (``columns`` in order, header first) or JSONL (each row's own keys)."""
    out = io.StringIO(newline="")
    if kind == "csv":
        columns = list(columns)
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([text_of(row.get(c)) if c in row else "" for c in columns])
    else:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out.getvalue()


def write_atomically(path: str | Path, content: str) -> None:
    """Write ``content`` to a temporary file beside ``path`` and rename it into place, so a
    failure leaves either the old file or none, never half a file."""
    path = Path(path)
    handle = tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        newline="",
        dir=path.parent,
        prefix=f".{path.name}.",
        suffix=".tmp",
        delete=False,
    )
    try:
        # A temporary file is private (0600); the result gets the permissions of any new file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(handle.name, 0o666 & ~umask)
        with handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
