"""The management commands a researcher runs: import, stimuli, launch, export."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from studies.models import Study
from studies.spec import load_spec, spec_dict

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "examples" / "refusal-perception" / "study.yaml"


CHANGING = {"import_study", "import_stimuli", "launch_study"}


def run(*args: str) -> str:
    """Run a command; those that create or change a study act as the researcher "ada"."""
    out = StringIO()
    extra = ("--as", "ada") if args[0] in CHANGING else ()
    call_command(*args, *extra, stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def ada(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-123")


def test_import_launch_export_round_trip(tmp_path):
    assert run("import_study", str(SEED)).strip() == "refusal-perception"
    assert Study.objects.get().queries.count() == 16
    exported = run("export_study_spec", "refusal-perception")
    original = spec_dict(load_spec(SEED.read_text()))
    original.pop("stimuli", None)
    assert spec_dict(load_spec(exported)) == original
    out = tmp_path / "spec.yaml"
    run("export_study_spec", "refusal-perception", "--out", str(out))
    assert yaml.safe_load(out.read_text())["slug"] == "refusal-perception"
    assert "is live with 480 participant slots" in run("launch_study", "refusal-perception")


def test_invalid_spec_names_field_and_line_and_writes_nothing(tmp_path):
    text = SEED.read_text().replace("items_per_participant: 8", "items_per_participant: eight")
    bad = tmp_path / "study.yaml"
    bad.write_text(text)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "items_per_participant" in row)
    with pytest.raises(CommandError) as caught:
        run("import_study", str(bad))
    assert "items_per_participant" in str(caught.value)
    assert f"line {line}" in str(caught.value)
    assert not Study.objects.exists()


def test_bad_stimuli_file_is_reported_and_changes_nothing(tmp_path):
    run("import_study", str(SEED))
    bad = tmp_path / "bad.csv"
    bad.write_text("query_id,query\nq1,hello\n")
    with pytest.raises(CommandError, match="benign_scenario"):
        run("import_stimuli", "refusal-perception", str(bad), "--replace")
    assert Study.objects.get().queries.count() == 16


def test_import_stimuli_replace(tmp_path):
    run("import_study", str(SEED))
    lines = (SEED.parent / "stimuli.csv").read_text().splitlines(keepends=True)
    import csv

    rows = list(csv.reader(lines))
    subset = tmp_path / "subset.csv"
    with subset.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows[:5])
    out = run("import_stimuli", "refusal-perception", str(subset), "--replace")
    assert "12 removed" in out
    assert Study.objects.get().queries.count() == 4


def test_launch_reports_why_it_cannot(tmp_path):
    run("import_study", str(SEED))
    Study.objects.get().queries.all().delete()
    with pytest.raises(CommandError, match="no queries"):
        run("launch_study", "refusal-perception")


def test_unknown_slug_is_a_clear_error():
    for command in ("launch_study", "export_study_spec"):
        with pytest.raises(CommandError, match="no study with slug 'nope'"):
            run(command, "nope")
