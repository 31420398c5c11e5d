"""Writing a table as CSV, JSONL or Parquet with memory flat in the number of rows.

On PostgreSQL a table with a SELECT is written by the server itself: ``COPY (SELECT …) TO
STDOUT`` streamed to the file (CSV; JSONL as one ``row_to_json`` text per line), and Parquet by
reading that CSV back in record batches with pyarrow's streaming reader. Everything else (and
any database other than PostgreSQL) goes through the table's row iterator in chunks.
Types are R- and pandas-friendly: CSV has ISO 8601 UTC timestamps, true/false and empty cells
for null; JSONL native JSON types; Parquet bool, int64, float64, timestamp[us, UTC], string.
"""

from __future__ import annotations

import csv
import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg import sql

from studies.datasets.tables import Column, Table

FORMATS: tuple[str, ...] = ("csv", "jsonl", "parquet")
# Rows per Parquet record batch / row group piece, and per round trip of the row iterators.
BATCH_ROWS = 50_000
# Bytes per block the Parquet converter reads from the CSV (bounds its memory).
CSV_BLOCK_BYTES = 4 << 20
# Rows between two progress reports of a COPY.
PROGRESS_ROWS = 10_000

Progress = Callable[[int], None]

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "category": pa.string(),
    "integer": pa.int64(),
    "float": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("us", tz="UTC"),
    "json": pa.string(),
}


def iso_utc(value: datetime) -> str:
    """2026-01-31T14:05:09.123456Z: what the SQL path's to_char writes, to the microsecond."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def csv_cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "datetime":
        return iso_utc(value)
    if kind == "json":
        return _json_text(value)
    return str(value)


def json_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return iso_utc(value)
    return value


# --- SQL expressions per format ------------------------------------------------------------

_ISO_SQL = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def _csv_expr(column: Column) -> sql.Composable:
    ref = sql.SQL("t.{}").format(sql.Identifier(column.name))
    if column.type == "boolean":
        return sql.SQL("CASE WHEN {0} THEN 'true' WHEN NOT {0} THEN 'false' END").format(ref)
    if column.type == "datetime":
        return sql.SQL(_ISO_SQL).format(ref)
    if column.type == "json":
        return sql.SQL("{}::text").format(ref)
    return ref


def _json_expr(column: Column) -> sql.Composable:
    ref = sql.SQL("t.{}").format(sql.Identifier(column.name))
    if column.type == "datetime":
        return sql.SQL(_ISO_SQL).format(ref)
    return ref


def _formatted(table: Table, expr: Callable[[Column], sql.Composable]) -> sql.Composable:
    items = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(expr(c), sql.Identifier(c.name)) for c in table.columns
    )
    return sql.SQL("SELECT {} FROM ({}) t").format(items, table.typed_select())


def csv_copy_sql(table: Table, *, header: bool = True) -> sql.Composable:
    return sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER {})").format(
        _formatted(table, _csv_expr), sql.SQL("true" if header else "false")
    )


def jsonl_copy_sql(table: Table) -> sql.Composable:
    # CSV with a delimiter and quote JSON text never holds raw (it escapes control characters):
    # each line is then the JSON text itself, unquoted and unescaped.
    return sql.SQL(
        "COPY (SELECT row_to_json(s)::text FROM ({}) s) TO STDOUT "
        "WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
    ).format(_formatted(table, _json_expr))


def count_sql(table: Table) -> sql.Composable:
    if table.count_from is not None:
        return sql.SQL("SELECT count(*) {}").format(table.count_from)
    return sql.SQL("SELECT count(*) FROM ({}) t").format(table.typed_select())


# --- the PostgreSQL path -------------------------------------------------------------------


def _copy_to(pg, statement: sql.Composable, out, progress: Progress | None) -> int:
    """Stream a COPY's output into ``out``; returns the rows (header included).

    libpq hands COPY data over one row per message (a text with line breaks included), so
    counting messages counts rows exactly; progress hears of them every PROGRESS_ROWS.
    """
    rows = 0
    with pg.cursor() as cursor, cursor.copy(statement) as copy:
        for data in copy:
            out.write(data)
            rows += 1
            if progress is not None and rows % PROGRESS_ROWS == 0:
                progress(PROGRESS_ROWS)
    if progress is not None and rows % PROGRESS_ROWS:
        progress(rows % PROGRESS_ROWS)
    return rows


def _parquet_from_csv(table: Table, source, path: Path, progress: Progress | None) -> int:
    names = table.column_names
    schema = arrow_schema(table)
    if not source.peek(1):
        # No rows at all (pyarrow refuses an empty CSV): a valid file with the columns.
        pq.write_table(schema.empty_table(), path)
        return 0
    reader = pa_csv.open_csv(
        source,
        read_options=pa_csv.ReadOptions(column_names=names, block_size=CSV_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types={c.name: ARROW_TYPES[c.type] for c in table.columns},
            null_values=[""],
            true_values=["true"],
            false_values=["false"],
            strings_can_be_null=True,
            # COPY writes NULL as an empty cell and an empty text as "": keep them apart.
            quoted_strings_can_be_null=False,
        ),
    )
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for batch in reader:
            writer.write_batch(batch.cast(schema) if batch.schema != schema else batch)
            count += batch.num_rows
            if progress is not None:
                progress(batch.num_rows)
    return count


def write_table_postgres(
    pg, table: Table, path: Path, export_format: str, progress: Progress | None = None
) -> None:
    """Write a table with a SELECT through COPY on ``pg`` (a psycopg connection)."""
    if export_format == "csv":
        with open(path, "wb") as out:
            _copy_to(pg, csv_copy_sql(table), out, _minus_header(progress))
    elif export_format == "jsonl":
        with open(path, "wb") as out:
            _copy_to(pg, jsonl_copy_sql(table), out, progress)
    else:
        _parquet_through_pipe(pg, table, path, progress)


def _parquet_through_pipe(pg, table: Table, path: Path, progress: Progress | None) -> None:
    """COPY's CSV into a pipe on one thread while pyarrow parses it into record batches on
    this one: the server's work and the conversion overlap, nothing lands on disk twice, and
    memory is a few blocks whatever the row count."""
    read_fd, write_fd = os.pipe()
    failure: list[BaseException] = []

    def pump() -> None:
        try:
            with open(write_fd, "wb") as out:
                _copy_to(pg, csv_copy_sql(table, header=False), out, None)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=pump, name=f"copy-{table.name}", daemon=True)
    thread.start()
    try:
        # Closing the read end on a parse error makes the pump's next write fail, so it ends.
        with open(read_fd, "rb") as source:
            _parquet_from_csv(table, source, path, progress)
    finally:
        thread.join()
    if failure:
        raise failure[0]


def _minus_header(progress: Progress | None) -> Progress | None:
    if progress is None:
        return None
    state = {"header": True}

    def count(lines: int) -> None:
        if state["header"] and lines:
            state["header"] = False
            lines -= 1
        progress(lines)

    return count


# --- the portable path ---------------------------------------------------------------------


def arrow_schema(table: Table) -> pa.Schema:
    return pa.schema([pa.field(c.name, ARROW_TYPES[c.type]) for c in table.columns])


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _arrow_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "json":
        return _json_text(value)
    if kind == "datetime":
        return value.astimezone(UTC)
    return value


def write_table_rows(
    table: Table, path: Path, export_format: str, progress: Progress | None = None
) -> int:
    """Write a table from its row iterator, a chunk at a time; returns the rows written."""
    kinds = [c.type for c in table.columns]
    names = table.column_names
    count = 0
    if export_format == "parquet":
        schema = arrow_schema(table)
        with pq.ParquetWriter(path, schema) as writer:
            for chunk in _chunks(table.rows(), BATCH_ROWS):
                arrays = [
                    pa.array(
                        [_arrow_value(row[i], kind) for row in chunk], type=schema.field(i).type
                    )
                    for i, kind in enumerate(kinds)
                ]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                count += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            if count == 0:
                writer.write_table(schema.empty_table())
        return count
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out) if export_format == "csv" else None
        if writer is not None:
            writer.writerow(names)
        for chunk in _chunks(table.rows(), 5000):
            if writer is not None:
                writer.writerows(
                    [csv_cell(v, k) for v, k in zip(row, kinds, strict=True)] for row in chunk
                )
            else:
                out.writelines(
                    json.dumps(
                        {n: json_value(v, k) for n, v, k in zip(names, row, kinds, strict=True)},
                        ensure_ascii=False,
                    )
                    + "\n"
                    for row in chunk
                )
            count += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return count


def file_name(table: Table, export_format: str) -> str:
    return f"{table.name}.{export_format}"
