"""Export tables: ratings recorded through the participant flow come back identical in CSV, JSONL
and Parquet (values and types); the portable path equals PostgreSQL's COPY path; the codebook
names every column of every file; raw recruitment ids only on the owner's explicit option."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from annotation import selectors as annotation_selectors
from annotation.models import Participant
from studies.datasets import writers
from studies.datasets.exports import postgres_reader
from studies.datasets.tables import TABLE_NAMES, build_tables
from tests.datasets.export_fixtures import RAW_IDS, export_files, recorded_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(make_study):
    return recorded_study(make_study)


def _reference(study, inclusion: str) -> list[dict]:
    """The ratings as the ORM's long format gives them (independent of the export code), with
    its blanks as absent values and its text timestamps as datetimes."""
    rows = []
    for row in annotation_selectors.ratings_long_format(study, inclusion):
        row = {k: (None if v == "" else v) for k, v in row.items()}
        for key in ("shown_at", "answered_at"):
            if row[key] is not None:
                row[key] = datetime.fromisoformat(row[key]).astimezone(UTC)
        rows.append(row)
    return rows


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize("inclusion", ["included", "all"])
def test_ratings_come_back_identical_in_every_format(study, tmp_path, inclusion):
    expected = _reference(study, inclusion)
    completed = Participant.objects.filter(study=study, status="completed")
    if inclusion == "included":
        assert {r["participant_id"] for r in expected} == {
            p.pseudonym[:16] for p in completed.filter(excluded=False)
        }
    else:
        assert any(r["excluded"] for r in expected)
        assert any(r["participant_status"] == "active" for r in expected)
    assert len(expected) > 100
    columns = list(expected[0])

    csv_files = export_files(study, tmp_path, tables=("ratings",), inclusion=inclusion)
    jsonl_files = export_files(
        study, tmp_path, tables=("ratings",), inclusion=inclusion, export_format="jsonl"
    )
    parquet_files = export_files(
        study, tmp_path, tables=("ratings",), inclusion=inclusion, export_format="parquet"
    )

    # CSV: true/false, ISO 8601 UTC, empty for absent; pandas reads the types back.
    text = csv_files["data/ratings.csv"].decode()
    read = list(csv.DictReader(io.StringIO(text)))
    assert list(read[0]) == columns
    as_text = [
        {
            k: ""
            if v is None
            else (
                "true"
                if v is True
                else "false"
                if v is False
                else _iso(v)
                if isinstance(v, datetime)
                else str(v)
            )
            for k, v in row.items()
        }
        for row in expected
    ]
    assert read == as_text
    frame = pd.read_csv(io.StringIO(text), parse_dates=["shown_at", "answered_at"])
    assert frame["value"].dtype == "int64"
    assert frame["excluded"].dtype == bool and frame["is_pilot"].dtype == bool
    assert str(frame["shown_at"].dt.tz) == "UTC"

    # JSONL: native JSON types.
    lines = jsonl_files["data/ratings.jsonl"].decode().splitlines()
    assert [json.loads(line) for line in lines] == [
        {k: _iso(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in expected
    ]

    # Parquet: real bool, int64, timestamp[us, UTC], string.
    table = pq.read_table(pa.BufferReader(parquet_files["data/ratings.parquet"]))
    assert table.column_names == columns
    schema = table.schema
    assert schema.field("excluded").type == pa.bool_()
    assert schema.field("value").type == pa.int64()
    assert schema.field("item_position").type == pa.int64()
    assert schema.field("shown_at").type == pa.timestamp("us", tz="UTC")
    assert schema.field("participant_id").type == pa.string()
    assert table.to_pylist() == expected


def _parsed(path, export_format: str):
    if export_format == "csv":
        return list(csv.reader(path.open(newline="", encoding="utf-8")))
    if export_format == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return pq.read_table(path)


def test_portable_path_writes_what_postgres_copy_writes(study, tmp_path):
    """The ORM path (any database, e.g. the SQLite demo) and the COPY path agree."""
    tables = [t for t in build_tables(study, TABLE_NAMES, inclusion="all") if t.sql_from]
    assert {t.name for t in tables} == {"ratings", "trials"}
    for table, export_format in ((t, f) for t in tables for f in writers.FORMATS):
        portable = tmp_path / f"{table.name}-rows.{export_format}"
        fast = tmp_path / f"{table.name}-copy.{export_format}"
        rows = writers.write_table_rows(table, portable, export_format)
        with postgres_reader() as pg:
            writers.write_table_postgres(pg, table, fast, export_format)
        assert rows > 0
        left, right = _parsed(portable, export_format), _parsed(fast, export_format)
        if export_format == "parquet":
            assert left.schema == right.schema
            assert left.to_pylist() == right.to_pylist()
        else:
            assert left == right


def test_codebook_names_every_column_of_every_file_written(study, tmp_path):
    for export_format in writers.FORMATS:
        # A Parquet package also holds data/ratings.csv, the analysis' input: two formats.
        package = export_format == "parquet"
        files = export_files(study, tmp_path, export_format=export_format, package=package)
        codebook = json.loads(files["codebook.json"])
        data = {name: body for name, body in files.items() if name.startswith("data/")}
        assert {n.split("/")[1].split(".")[0] for n in data} == set(TABLE_NAMES)
        assert set(codebook["files"]) == set(data)
        for name, body in data.items():
            if name.endswith(".csv"):
                written = next(csv.reader(io.StringIO(body.decode())))
            elif name.endswith(".jsonl"):
                lines = body.decode().splitlines()
                assert lines, name
                written = list(json.loads(lines[0]))
                assert all(list(json.loads(line)) == written for line in lines)
            else:
                written = pq.read_schema(pa.BufferReader(body)).names
            documented = codebook["files"][name]["columns"]
            assert [c["name"] for c in documented] == written, name
            assert all(c["meaning"] and c["type"] for c in documented), name
        markdown = files["codebook.md"].decode()
        for entry in codebook["files"].values():
            assert all(f"| {c['name']} |" in markdown for c in entry["columns"])
        assert codebook["export"]["inclusion"]["rule"] == "included"
        questions = {q["key"]: q for q in codebook["item_questions"]}
        assert questions and all(
            q["text"] and q["scale"]["anchors"] and "reverse_coded" in q and "construct" in q
            for q in questions.values()
        )
        factors = codebook["study"]["factors"]
        assert {f["name"] for f in factors} == {"motivation", "alignment", "refusal_strategy"}
        assert all(f["levels"] for f in factors)


def test_no_recruitment_id_anywhere_unless_the_owner_option_is_on(study, tmp_path):
    assert Participant.objects.filter(study=study).exclude(recruitment_id_encrypted="").count() == 5
    for export_format in writers.FORMATS:
        # The package once: its spec, stimuli, analysis and README must not hold one either.
        package = export_format == "csv"
        files = export_files(
            study, tmp_path, export_format=export_format, package=package, inclusion="all"
        )
        for name, body in files.items():
            for raw in RAW_IDS:
                assert raw.encode() not in body, (name, raw)
        participants = files[f"data/participants.{export_format}"]
        assert b"recruitment_participant_id" not in participants
        # The other recruitment parameters are there.
        assert b"recruitment_session" in participants and b"s1" in participants

    files = export_files(
        study, tmp_path, tables=("participants",), inclusion="all", include_recruitment_ids=True
    )
    rows = list(csv.DictReader(io.StringIO(files["data/participants.csv"].decode())))
    # The declined participant never consented but arrived with an id: all five are there.
    assert sorted(r["recruitment_participant_id"] for r in rows) == sorted(RAW_IDS)
    codebook = json.loads(files["codebook.json"])
    assert codebook["export"]["recruitment_ids_included"] is True


def test_participants_table_has_decision_cell_timings_and_no_withdrawn(study, tmp_path):
    withdrawn = Participant.objects.filter(study=study, status="active").get()
    Participant.objects.filter(pk=withdrawn.pk).update(status="withdrawn")
    files = export_files(
        study, tmp_path, tables=("participants",), inclusion="all", export_format="jsonl"
    )
    rows = [json.loads(line) for line in files["data/participants.jsonl"].decode().splitlines()]
    assert withdrawn.pseudonym[:16] not in {r["participant_id"] for r in rows}
    excluded = [r for r in rows if r["excluded"]]
    assert len(excluded) == 1 and excluded[0]["exclusion_decision"] == "excluded"
    assert excluded[0]["exclusion_reason"] == "answered too fast"
    completed = [r for r in rows if r["status"] == "completed"]
    assert len(completed) == 3
    for row in completed:
        assert row["total_seconds"] >= 0 and row["completed_at"].endswith("Z")
        # The seed design's one between-participants factor is the refusal strategy.
        assert row["cell_refusal_strategy"] in (
            "direct_refusal",
            "explanation_based",
            "redirection",
            "partial_compliance",
        )
        assert isinstance(row["flags"], list) and isinstance(row["is_pilot"], bool)
        assert row["recruitment_study"] == "s1" and row["recruitment_session"] == "x"


@pytest.mark.parametrize("export_format", writers.FORMATS)
def test_a_study_without_participants_exports_empty_tables_with_their_columns(
    make_study, tmp_path, export_format
):
    study = make_study(target_participants=2, launch=False)
    files = export_files(study, tmp_path, export_format=export_format, package=True)
    codebook = json.loads(files["codebook.json"])
    ratings = files[f"data/ratings.{export_format}"]
    columns = [c["name"] for c in codebook["files"][f"data/ratings.{export_format}"]["columns"]]
    if export_format == "csv":
        assert ratings.decode().splitlines() == [",".join(columns)]
    elif export_format == "jsonl":
        assert ratings == b""
    else:
        table = pq.read_table(pa.BufferReader(ratings))
        assert table.num_rows == 0 and table.column_names == columns
    # The package's analysis is of nothing, and says so.
    assert json.loads(files["analysis.json"])["meta"]["n_participants"] == 0
