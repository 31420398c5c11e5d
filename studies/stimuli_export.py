"""A study's stimuli written out in the wide format that studies.stimuli_file reads back.

One row per query: its text, category, topic, a scenario per motivation level, the approved
text of each response type (empty where none is approved) and the query's metadata columns
(``source`` and whatever else the imported file carried). ``parse_stimuli`` of an export gives
back what was imported, so an export is also a new study's stimuli file. Rows are produced
from a database iterator, so a large study is never held in memory as a whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import TextIO

from django.db.models import Prefetch

from studies.domain import MOTIVATION_LEVELS, RESPONSE_TYPES, SCENARIO_COLUMNS, scenario_column
from studies.models import Query, ResponseVariant, Study
from studies.stimuli_file import KNOWN_COLUMNS

EXPORT_FORMATS: tuple[str, ...] = ("csv", "jsonl")

# The column order of the example files: identity first, then scenarios, then the texts.
BASE_COLUMNS: tuple[str, ...] = (
    "query_id",
    "category",
    "topic",
    "query",
    *SCENARIO_COLUMNS,
    *RESPONSE_TYPES,
    "source",
)

# Rows fetched from the database per round trip while streaming.
CHUNK_SIZE = 500
# Rows written per piece of a streamed download.
ROWS_PER_PIECE = 500


class ExportFormatError(ValueError):
    """An export format other than csv or jsonl."""


def check_format(export_format: str) -> str:
    """The format, lower-cased, if it is one an import reads; ExportFormatError otherwise."""
    normalized = (export_format or "").strip().lower()
    if normalized not in EXPORT_FORMATS:
        raise ExportFormatError(
            f"unknown stimuli format '{export_format}'; use one of: {', '.join(EXPORT_FORMATS)}"
        )
    return normalized


def export_filename(study: Study, export_format: str = "csv") -> str:
    return f"{study.slug}-stimuli.{check_format(export_format)}"


def metadata_columns(study: Study) -> list[str]:
    """Every metadata key any of the study's queries has, sorted; one column each."""
    keys: set[str] = set()
    for metadata in study.queries.values_list("metadata", flat=True).iterator(CHUNK_SIZE):
        if isinstance(metadata, dict):
            keys.update(str(k) for k in metadata)
    # A key that reads as one of the file's own columns would make the header ambiguous
    # (imports never store one; only a hand-edited row could hold it), so it is left out.
    return sorted(
        k for k in keys if k.strip() and k.strip().lower() not in {*KNOWN_COLUMNS, "source"}
    )


def export_columns(study: Study) -> list[str]:
    """The header of the study's stimuli file."""
    return [*BASE_COLUMNS, *metadata_columns(study)]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    # The reader keeps structured JSONL values as JSON text; write them back the same way.
    return json.dumps(value, ensure_ascii=False)


def stimuli_rows(study: Study, columns: list[str] | None = None) -> Iterator[dict[str, str]]:
    """One dict per query (every column present, empty text where there is nothing)."""
    columns = columns if columns is not None else export_columns(study)
    extra = [c for c in columns if c not in BASE_COLUMNS]
    # Ordered so that the most recently changed approved text wins if a draft has two.
    approved = ResponseVariant.objects.filter(
        review_status=ResponseVariant.ReviewStatus.APPROVED, response_type__in=RESPONSE_TYPES
    ).order_by("updated_at", "pk")
    queries = (
        Query.objects.filter(study=study)
        .order_by("query_id")
        .prefetch_related("scenarios", Prefetch("variants", approved, to_attr="approved"))
    )
    for query in queries.iterator(chunk_size=CHUNK_SIZE):
        scenarios = {s.motivation: s.text for s in query.scenarios.all()}
        texts = {v.response_type: v.text for v in query.approved}
        metadata = query.metadata if isinstance(query.metadata, dict) else {}
        yield {
            "query_id": query.query_id,
            "category": query.category,
            "topic": query.topic,
            "query": query.text,
            **{scenario_column(m): scenarios.get(m, "") for m in MOTIVATION_LEVELS},
            **{t: texts.get(t, "") for t in RESPONSE_TYPES},
            "source": query.source,
            **{key: _cell(metadata.get(key)) for key in extra},
        }


def stream_stimuli(study: Study, export_format: str = "csv") -> Iterator[str]:
    """The stimuli file in pieces, for a streamed download or a file written as it goes."""
    export_format = check_format(export_format)
    columns = export_columns(study)
    rows = stimuli_rows(study, columns)
    if export_format == "jsonl":
        return _jsonl_pieces(rows)
    return _csv_pieces(columns, rows)


def write_stimuli(study: Study, handle: TextIO, export_format: str = "csv") -> int:
    """Write the stimuli file to an open text handle; returns the number of queries written."""
    export_format = check_format(export_format)
    columns = export_columns(study)
    count = 0

    def counted() -> Iterator[dict[str, str]]:
        nonlocal count
        for row in stimuli_rows(study, columns):
            count += 1
            yield row

    if export_format == "jsonl":
        pieces = _jsonl_pieces(counted())
    else:
        pieces = _csv_pieces(columns, counted())
    for piece in pieces:
        handle.write(piece)
    return count


def _csv_pieces(columns: list[str], rows: Iterator[dict[str, str]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for n, row in enumerate(rows, 1):
        writer.writerow(row)
        if n % ROWS_PER_PIECE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _jsonl_pieces(rows: Iterator[dict[str, str]]) -> Iterator[str]:
    piece: list[str] = []
    for row in rows:
        # json.dumps escapes newlines inside values, so each object stays on its own line.
        piece.append(json.dumps(row, ensure_ascii=False) + "\n")
        if len(piece) == ROWS_PER_PIECE:
            yield "".join(piece)
            piece = []
    if piece:
        yield "".join(piece)
