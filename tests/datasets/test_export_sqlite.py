"""The demo's SQLite fallback exports through the portable path (no COPY): a study whose
participants answered through the services comes back identical in CSV, JSONL and Parquet."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECK = textwrap.dedent(
    """
    import csv, io, json, zipfile
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq
    from django.db import connection

    from annotation import selectors
    from studies import services
    from studies.datasets.exports import ExportOptions, export_to_path
    from studies.spec import load_spec_file
    from studies.stimuli_file import read_stimuli_file
    from datetime import timedelta
    from django.utils import timezone
    from annotation.models import Participant, Rating, Trial

    assert connection.vendor == "sqlite", connection.vendor
    spec, stimuli = load_spec_file("examples/refusal-perception/study.yaml")
    study = services.import_study(spec=spec, stimuli=read_stimuli_file(stimuli))
    services.launch_study(study=study)
    # The participant services' hot path speaks PostgreSQL; on SQLite the rows are made here.
    now = timezone.now()
    item_questions = list(study.questions.filter(block__isnull=True, is_attention_check=False))
    for n, slot in enumerate(study.slots.order_by("index")[:3]):
        person = Participant.objects.create(
            study=study, pseudonym=f"{n:064x}", status="completed", slot=slot,
            recruitment={"study": "s1"}, consented_at=now, completed_at=now + timedelta(minutes=9),
        )
        for item in slot.items.order_by("position"):
            query = None
            if item.kind == "stimulus":
                chosen = study.queries.filter(category=item.category).order_by("pk")
                query = item.query or chosen[(n + item.position) % chosen.count()]
            trial = Trial.objects.create(
                participant=person, slot_item=item, position=item.position,
                query=query,
                shown_at=now + timedelta(seconds=20 * item.position),
                answered_at=now + timedelta(seconds=20 * item.position + 9.5),
                ms_on_page=9500 + item.position,
            )
            asked = [item.attention_check] if item.kind == "attention" else item_questions
            Rating.objects.bulk_create(
                Rating(participant=person, trial=trial, question=q, value=1 + (n + q.pk) % 7)
                for q in asked
            )

    def iso(value):
        return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    expected = [
        {k: (None if v == "" else iso(v) if k in ("shown_at", "answered_at") and v else v)
         for k, v in row.items()}
        for row in selectors.ratings_long_format(study, "included")
    ]
    assert len(expected) > 200
    for fmt in ("csv", "jsonl", "parquet"):
        target = f"{OUT}/export-{fmt}.zip"
        export_to_path(study, target, ExportOptions(export_format=fmt, package=fmt == "csv"))
        with zipfile.ZipFile(target) as archive:
            name = next(n for n in archive.namelist() if n.endswith(f"data/ratings.{fmt}"))
            body = archive.read(name)
            names = archive.namelist()
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(body.decode())))
            text = [{k: "" if v is None else ("true" if v is True else "false" if v is False
                     else str(v)) for k, v in row.items()} for row in expected]
            assert rows == text
            assert any(n.endswith("analysis.json") for n in names)
        elif fmt == "jsonl":
            assert [json.loads(line) for line in body.decode().splitlines()] == expected
        else:
            table = pq.read_table(pa.BufferReader(body))
            assert table.schema.field("value").type == pa.int64()
            got = table.to_pylist()
            for row in got:
                for key in ("shown_at", "answered_at"):
                    if row[key] is not None:
                        row[key] = row[key].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            assert got == expected
    print("SQLITE EXPORTS OK", len(expected))
    """
)


@pytest.mark.long_running
def test_exports_on_sqlite_match_the_orm_in_every_format(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "EXPORT_ROOT": str(tmp_path / "exports"),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    migrated = subprocess.run(
        [*manage, "migrate", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert migrated.returncode == 0, migrated.stderr
    script = f"OUT = {str(tmp_path)!r}\n" + CHECK
    checked = subprocess.run(
        [*manage, "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SQLITE EXPORTS OK" in checked.stdout
