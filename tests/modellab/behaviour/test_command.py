"""classify_natural_responses from the shell: a real process, as a researcher types it, and its
clear refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from modellab.models import ClassificationRun
from studies.models import StudyMembership
from tests.workers import worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[3]


def shell(line: str) -> subprocess.CompletedProcess:
    # Tasks inline in the command's process: no worker needed for --wait to finish.
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "CELERY_TASK_ALWAYS_EAGER": "1"}
    line = line.replace("python manage.py", f"{sys.executable} {ROOT / 'manage.py'}", 1)
    return subprocess.run(
        ["bash", "-c", line], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def ada(natural_study):
    study, _models = natural_study
    ada = get_user_model().objects.create_user("ada", password="pw-ada-123")
    StudyMembership.objects.create(study=study, user=ada, role="editor")
    return ada


def test_classify_in_a_shell_then_again_with_nothing_left(natural_study, ada, tmp_path):
    study, _models = natural_study
    phrases = tmp_path / "phrases.json"
    phrases.write_text(json.dumps({"window": 120}), encoding="utf-8")
    line = (
        f"python manage.py classify_natural_responses {study.slug} --classifier string_match "
        f"--model alpha --model beta --phrases {phrases} --wait --as ada"
    )
    done = shell(line)
    assert done.returncode == 0, done.stderr
    run = ClassificationRun.objects.get()
    assert (
        f"run {run.pk} (string_match three_way #{run.pk}): 96 of 96 responses queued" in done.stdout
    )
    assert f"run {run.pk} done: 96 classified, 0 unparsed, 0 failed" in done.stdout
    assert run.params["phrases"]["window"] == 120 and run.created_by == ada
    again = shell(line)
    assert again.returncode == 0, again.stderr
    assert (
        f"run {run.pk} (string_match three_way #{run.pk}): 0 of 96 responses queued" in again.stdout
    )
    assert ClassificationRun.objects.count() == 1


def test_clear_refusals_that_start_nothing(natural_study, ada, tmp_path):
    study, _models = natural_study
    viewer = get_user_model().objects.create_user("vic", password="pw-vic-123")
    StudyMembership.objects.create(study=study, user=viewer, role="viewer")
    bad_json = tmp_path / "phrases.json"
    bad_json.write_text("{oops", encoding="utf-8")

    def run(*args: str, user: str = "ada") -> str:
        out = StringIO()
        call_command("classify_natural_responses", *args, "--as", user, stdout=out)
        return out.getvalue()

    slug = study.slug
    refusals = [
        (("nope", "--classifier", "string_match"), "no study with slug 'nope'"),
        ((slug, "--classifier", "string_match", "--model", "ghost"), "no natural responses"),
        ((slug, "--classifier", "string_match", "--scheme", "five_way"), "three_way only"),
        ((slug, "--classifier", "llm_judge", "--judge-model", "ghost"), "no model named 'ghost'"),
        ((slug, "--classifier", "llm_judge"), "needs a judge model"),
        ((slug, "--classifier", "string_match", "--phrases", str(bad_json)), "not valid JSON"),
        ((slug, "--classifier", "llm_judge", "--judge-prompt", "/nonexistent"), "cannot read"),
    ]
    for args, message in refusals:
        with pytest.raises(CommandError, match=message):
            run(*args)
    with pytest.raises(CommandError, match="vic is viewer"):
        run(slug, "--classifier", "string_match", user="vic")
    assert not ClassificationRun.objects.exists()
