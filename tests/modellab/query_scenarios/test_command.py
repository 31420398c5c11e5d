"""generate_query_scenarios as a user types it (a real process, tasks inline), and its
refusals (in-process, call_command)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from modellab.models import QueryScenarioJob
from tests.modellab.material.helpers import manage
from tests.modellab.query_scenarios.conftest import CATEGORIES, SEED


@pytest.fixture
def files(tmp_path) -> tuple[Path, Path]:
    categories = tmp_path / "categories.json"
    categories.write_text(json.dumps(CATEGORIES), encoding="utf-8")
    examples = tmp_path / "examples.jsonl"
    examples.write_text(json.dumps(SEED) + "\n", encoding="utf-8")
    return categories, examples


@pytest.mark.django_db(transaction=True)
def test_the_command_runs_the_rounds_to_verification(loopback, files, scripted_server):
    categories, examples = files
    result = manage(
        "generate_query_scenarios", "--name", "shell-set",
        "--categories", str(categories), "--examples", str(examples),
        "--generator", "loopback", "--intent-judge", "loopback",
        "--rounds", "2", "--per-round", "8", "--budget", "100", "--wait", "--as", "ada",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    job = QueryScenarioJob.objects.get(name="shell-set")
    assert f"job {job.pk} 'shell-set': 2 round(s) of 8, budget 100 calls (new_queries" in (
        result.stdout
    )
    assert "round 2/2: 9 candidates, 2 repeated, 6 accepted by the judge" in result.stdout
    assert f"coders label the 6 accepted instance(s) in coding task {job.verification_task_id}" in (
        result.stdout
    )
    assert job.status == "verifying"


@pytest.mark.django_db
def test_the_command_refuses_bad_input_clearly(loopback, files, tmp_path):
    categories, examples = files
    base = ["--name", "x", "--generator", "loopback", "--intent-judge", "loopback"]
    with pytest.raises(CommandError, match="give --categories FILE"):
        call_command("generate_query_scenarios", *base, "--as", "ada")
    with pytest.raises(CommandError, match="no model named 'nope' that ada may use"):
        call_command(
            "generate_query_scenarios", *base[:2], "--generator", "nope",
            "--intent-judge", "loopback", "--categories", str(categories), "--as", "ada",
        )  # fmt: skip
    broken = tmp_path / "broken.json"
    broken.write_text("[{", encoding="utf-8")
    with pytest.raises(CommandError, match="broken.json, line 1: not valid JSON"):
        call_command("generate_query_scenarios", *base, "--categories", str(broken), "--as", "ada")
    with pytest.raises(CommandError) as err:
        call_command(
            "generate_query_scenarios", *base, "--categories", str(categories),
            "--rounds", "0", "--overlap", "0", "--as", "ada",
        )  # fmt: skip
    assert "rounds: must be a whole number from 1 to 20" in str(err.value)
    assert "verification_overlap: coders per item" in str(err.value)
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        call_command("generate_query_scenarios", *base, "--study", "nope", "--as", "ada")
    assert not QueryScenarioJob.objects.exists()
    call_command("generate_query_scenarios", *base, "--categories", str(categories), "--as", "ada")
    with pytest.raises(CommandError, match="you already have a query–scenario job named 'x'"):
        call_command(
            "generate_query_scenarios", *base, "--categories", str(categories), "--as", "ada"
        )
    assert QueryScenarioJob.objects.count() == 1
