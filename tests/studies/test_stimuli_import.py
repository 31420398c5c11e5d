"""Importing stimuli: unstorable text refused by line, bulk writes, streaming, all or nothing."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from studies import services, stimuli_file
from studies.domain import RESPONSE_TYPES
from studies.models import AuditEvent, Query, ResponseVariant, Scenario
from studies.stimuli_file import StimuliFileError, StimulusRow, parse_stimuli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "refusal-perception" / "stimuli.csv"


def example_rows() -> list[dict]:
    return list(csv.DictReader(EXAMPLE.open(encoding="utf-8")))


def csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def many_rows(n: int, **cells: str) -> list[dict]:
    base = example_rows()[0]
    return [
        {**base, "query_id": f"m{i:05d}", "query": f"Question number {i}?", **cells}
        for i in range(n)
    ]


def stream(text: str):
    """The rows of a CSV text, read as the import command reads a file."""
    return stimuli_file.iter_stimuli(io.BytesIO(text.encode()), "s.csv")


def snapshot(study) -> tuple:
    """Everything an import writes, so a refused one can be shown to have written nothing."""
    return (
        sorted(Query.objects.filter(study=study).values_list("query_id", "text", "metadata")),
        sorted(Scenario.objects.filter(query__study=study).values_list("query__query_id", "text")),
        sorted(
            ResponseVariant.objects.filter(query__study=study).values_list(
                "query__query_id", "response_type", "model_name", "text", "source"
            )
        ),
        AuditEvent.objects.filter(study=study).count(),
    )


def with_nul(fmt: str) -> tuple[str, str]:
    """A file whose third line's query holds a NUL: (file name, contents)."""
    rows = example_rows()[:3]
    rows[1]["query"] = "How do I \x00 this?"
    if fmt == "csv":
        return "bad.csv", csv_text(rows)
    return "bad.jsonl", "".join(json.dumps(r) + "\n" for r in rows)


# --------------------------------------------------------------------------- the command


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_command_reports_a_nul_with_its_line_and_writes_nothing(tmp_path, make_study, fmt):
    ada = get_user_model().objects.create_user("ada", password="pw-ada-123")
    study = make_study(launch=False)
    study.memberships.create(user=ada, role="owner")
    before = snapshot(study)
    name, contents = with_nul(fmt)
    path = tmp_path / name
    path.write_text(contents, encoding="utf-8")
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "import_stimuli", study.slug, str(path), "--as", "ada"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    # CSV line 3 is the second data row; JSONL has no header, so the same row is on line 2.
    line = 3 if fmt == "csv" else 2
    assert f"line {line}, column 'query': contains a NUL character" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(study) == before


# --------------------------------------------------------------------------- the service


@pytest.mark.django_db
def test_service_refuses_a_row_with_a_nul_and_writes_nothing(make_study):
    study = make_study(launch=False)
    before = snapshot(study)
    (good,) = parse_stimuli(csv_text(example_rows()[:1]), "s.csv")
    bad = StimulusRow(
        query_id="q99",
        query="fine",
        category="privacy_violation",
        topic="",
        benign_scenario="You are kind.",
        malicious_scenario="You are not\x00.",
        responses={"direct_refusal": "No."},
        metadata={"source": "code"},
        line=7,
    )
    with pytest.raises(StimuliFileError) as info:
        services.import_stimuli(study=study, rows=[good, bad])
    assert info.value.problems == [
        "line 7, column 'malicious_scenario': contains a NUL character (\\x00) at character 12,"
        " which the database cannot store; remove it"
    ]
    assert snapshot(study) == before


@pytest.mark.django_db
def test_a_problem_after_the_first_batch_still_writes_nothing(make_study):
    """The file is read and written in batches; a bad row late in it rolls back the batches
    already written, so the import stays all or nothing."""
    study = make_study(launch=False)
    before = snapshot(study)
    rows = many_rows(services.IMPORT_BATCH_ROWS * 2 + 10)
    rows[-1]["topic"] = "bad\x00topic"
    with pytest.raises(StimuliFileError) as info:
        services.import_stimuli(
            study=study,
            rows=stream(csv_text(rows)),
        )
    assert info.value.problems[0].startswith(f"line {len(rows) + 1}, column 'topic'")
    assert snapshot(study) == before


@pytest.mark.django_db
def test_duplicate_query_ids_given_to_the_service_are_refused(make_study):
    study = make_study(launch=False)
    before = snapshot(study)
    rows = parse_stimuli(csv_text(example_rows()[:2]), "s.csv")
    with pytest.raises(StimuliFileError, match="duplicate query_id 'q01'"):
        services.import_stimuli(study=study, rows=[*rows, rows[0]])
    assert snapshot(study) == before


@pytest.mark.django_db
def test_merge_updates_texts_and_keeps_what_the_file_does_not_name(make_study):
    study = make_study(launch=False)
    q01 = study.queries.get(query_id="q01")
    generated = ResponseVariant.objects.create(
        query=q01,
        response_type="redirection",
        model_name="model-a",
        text="generated",
        source=ResponseVariant.Source.GENERATED,
        review_status=ResponseVariant.ReviewStatus.GENERATED,
        provenance={"model": "model-a"},
    )
    imported = ResponseVariant.objects.get(query=q01, response_type="direct_refusal", model_name="")
    ResponseVariant.objects.filter(pk=imported.pk).update(
        review_status=ResponseVariant.ReviewStatus.REJECTED, provenance={"kept": True}
    )
    rows = example_rows()[:1] + many_rows(2)
    rows[0].update(
        query="Changed?",
        benign_scenario="You are changed.",
        direct_refusal="A new refusal.",
        redirection="",
        source="elsewhere",
    )
    for row in rows:
        row["difficulty"] = "hard"
    summary = services.import_stimuli(study=study, rows=parse_stimuli(csv_text(rows), "s.csv"))
    assert (summary.created, summary.updated, summary.removed) == (2, 1, 0)
    q01.refresh_from_db()
    assert (q01.pk, q01.text, q01.source) == (imported.query_id, "Changed?", "elsewhere")
    assert q01.metadata == {"difficulty": "hard"}
    assert q01.scenarios.get(motivation="benign").text == "You are changed."
    imported.refresh_from_db()
    assert imported.text == "A new refusal."
    assert imported.review_status == ResponseVariant.ReviewStatus.APPROVED
    assert imported.provenance == {"kept": True}
    assert imported.updated_at > generated.updated_at
    # An empty cell leaves the existing imported text alone; other models' texts stay too.
    assert q01.variants.filter(response_type="redirection", model_name="").exists()
    assert ResponseVariant.objects.get(pk=generated.pk).text == "generated"
    assert study.queries.count() == 18
    new = study.queries.get(query_id="m00001")
    assert set(new.variants.values_list("response_type", flat=True)) == set(RESPONSE_TYPES)
    assert set(new.scenarios.values_list("motivation", flat=True)) == {"benign", "malicious"}
    audit = AuditEvent.objects.filter(study=study, action="stimuli_imported").latest("pk")
    assert audit.detail == {"created": 2, "updated": 1, "removed": 0, "replace": False}


# --------------------------------------------------------------------------- bulk and streaming


@pytest.mark.django_db
def test_statements_do_not_grow_with_the_rows(make_study, django_assert_max_num_queries):
    """50 rows and 500 rows take the same statements: new ones, the same again (every query
    updated), and with replace over the 16 queries of the example."""

    def statements(study, rows: list[dict], *, replace: bool, bound: int) -> int:
        text = csv_text(rows)
        with django_assert_max_num_queries(bound) as captured:
            services.import_stimuli(study=study, rows=stream(text), replace=replace)
        return len(captured)

    counts = {}
    for n in (50, 500):
        study = make_study(launch=False)  # back to the example's 16 queries
        rows = many_rows(n)
        new = statements(study, rows, replace=False, bound=10)
        again = statements(study, rows, replace=False, bound=10)
        assert study.queries.count() == 16 + n
        study = make_study(launch=False)
        replaced = statements(study, rows, replace=True, bound=20)
        assert study.queries.count() == n
        counts[n] = (new, again, replaced)
    assert counts[50] == counts[500]


class CountingLines:
    """A file's lines that count how many have been read."""

    def __init__(self, text: str) -> None:
        self.lines = text.encode().splitlines(keepends=True)
        self.read = 0

    def __iter__(self):
        for line in self.lines:
            self.read += 1
            yield line


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_rows_come_out_while_the_file_is_still_being_read(fmt):
    rows = many_rows(1000)
    text = csv_text(rows) if fmt == "csv" else "".join(json.dumps(r) + "\n" for r in rows)
    source = CountingLines(text)
    reader = stimuli_file.iter_stimuli(source, f"s.{fmt}")
    first = next(reader)
    assert first.query_id == "m00000"
    assert source.read <= 3
    assert sum(1 for _ in reader) == 999
    assert source.read == len(source.lines)
