"""export_stimuli run in a real shell as a user types it, and its refusals."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from studies.stimuli_file import parse_stimuli, read_stimuli_file

ROOT = Path(__file__).resolve().parents[2]


def shell(line: str) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
    }
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.django_db(transaction=True)
def test_export_stimuli_writes_a_file_import_stimuli_reads(make_study, seed_spec, tmp_path):
    study = make_study(launch=False)
    out = tmp_path / "exported.csv"
    result = shell(f".venv/bin/python manage.py export_stimuli {study.slug} --out {out}")
    assert result.returncode == 0, result.stderr
    assert f"16 queries written to {out}" in result.stderr
    exported = [dataclasses.replace(r, line=0) for r in read_stimuli_file(out)]
    assert exported == [dataclasses.replace(r, line=0) for r in seed_spec[1]]


@pytest.mark.django_db
def test_jsonl_to_standard_output_and_unknown_slug(make_study):
    study = make_study(launch=False)
    stdout = StringIO()
    call_command("export_stimuli", study.slug, "--format", "jsonl", stdout=stdout)
    assert len(parse_stimuli(stdout.getvalue(), "out.jsonl")) == 16
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("export_stimuli", "nope")


@pytest.mark.django_db
def test_format_follows_the_output_file_name(make_study, tmp_path):
    study = make_study(launch=False)
    out = tmp_path / "stimuli.jsonl"
    call_command("export_stimuli", study.slug, "--out", str(out), stderr=StringIO())
    assert out.read_text(encoding="utf-8").startswith('{"query_id": "q01"')
    assert len(read_stimuli_file(out)) == 16
