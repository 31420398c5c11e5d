"""The replication package, as a user runs it: `export_study --package` in a shell, the
manifest checked with sha256sum, the README's analysis command reproducing analysis.json number
for number, and `import_study spec.yaml` recreating the design and stimuli field for field."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from studies import selectors
from studies.models import Study
from studies.stimuli_export import stimuli_rows
from tests.datasets.export_fixtures import RAW_IDS, recorded_study
from tests.workers import worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _without_timings(report: dict) -> dict:
    report = json.loads(json.dumps(report))
    report["meta"].pop("timings")
    return report


@pytest.mark.long_running
def test_package_reimports_the_design_and_reproduces_its_analysis(make_study, tmp_path):
    study = recorded_study(make_study, target=24, simulated=16)
    get_user_model().objects.create_user("ada", password="pw-ada-123")

    target = tmp_path / "package.zip"
    made = _run(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "export_study",
            study.slug,
            "--out",
            str(target),
            "--package",
            "--format",
            "parquet",
        ],
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert "replication package of refusal-perception written" in made.stdout
    with zipfile.ZipFile(target) as archive:
        archive.extractall(tmp_path)
    package = tmp_path / "refusal-perception-replication-package"
    names = {str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()}
    assert names >= {
        "spec.yaml",
        "stimuli.csv",
        "codebook.json",
        "codebook.md",
        "analysis.json",
        "report.html",
        "README.md",
        "MANIFEST.sha256",
        "data/ratings.csv",
        *(
            f"data/{t}.parquet"
            for t in ("ratings", "participants", "stimuli", "trials", "block_answers")
        ),
    }
    for path in package.rglob("*"):
        if path.is_file():
            assert not any(raw.encode() in path.read_bytes() for raw in RAW_IDS), path

    checked = _run(["sha256sum", "-c", "MANIFEST.sha256"], package)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.count(": OK") == len(names) - 1

    # The README's own command, as written there, run from the package's folder.
    readme = (package / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("python -m studies.analysis "))
    command, _, redirect = line.partition(" > ")
    again = _run([sys.executable, *command.split()[1:]], package)
    assert again.returncode == 0, again.stderr
    original = json.loads((package / "analysis.json").read_text())
    assert original["meta"]["n_participants"] >= 16
    assert _without_timings(json.loads(again.stdout)) == _without_timings(original)
    assert redirect == "analysis-again.json"

    # The design and stimuli come back field for field (under another slug: this database
    # still has the original, which is live and cannot be overwritten).
    spec_text = (package / "spec.yaml").read_text()
    spec_text = re.sub(r"(?m)^slug: .*$", "slug: refusal-perception-again", spec_text, count=1)
    (package / "spec.yaml").write_text(spec_text)
    imported = _run(
        [sys.executable, str(ROOT / "manage.py"), "import_study", "spec.yaml", "--as", "ada"],
        package,
    )
    assert imported.returncode == 0, imported.stderr
    copy = Study.objects.get(slug="refusal-perception-again")
    assert dataclasses.replace(selectors.study_spec(copy), slug=study.slug) == (
        selectors.study_spec(study)
    )
    assert list(stimuli_rows(copy)) == list(stimuli_rows(study))
