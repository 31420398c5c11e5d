"""score_rewards typed in a shell (a subprocess, as a user types it); its error cases run
in-process (call_command), where a process each would only repeat Django's start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from modellab.models import RewardRun, RewardScore
from studies.generation import services as generation_services
from tests.generation.chat_server import ChatServer, Reply
from tests.workers import ROOT, worker_database_url

pytestmark = pytest.mark.django_db(transaction=True)


def manage(*args: str, eager: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": worker_database_url()}
    if eager:
        env["CELERY_TASK_ALWAYS_EAGER"] = "1"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def answer(request):
    content = json.dumps({"score": 1, "rationale": "fine"})
    return Reply(json={"choices": [{"message": {"role": "assistant", "content": content}}]})


def test_score_rewards_with_a_judge_and_wait(owned_study, researcher, tmp_path):
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Rate the reply from -3 to 3. JSON only.", encoding="utf-8")
    with ChatServer(handler=answer) as server:
        generation_services.register_model(
            name="judge",
            backend="openai",
            backend_settings={"base_url": server.url, "model": "j", "max_retries": 0},
            actor=researcher,
        )
        result = manage(
            "score_rewards",
            owned_study.slug,
            "--model",
            "judge",
            "--scorer",
            "llm_judge",
            "--judge-prompt-file",
            str(prompt),
            "--as",
            "rita",
            "--wait",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        run = RewardRun.objects.get()
        assert f"reward run {run.pk}: {run.n_total} stimuli" in result.stdout
        assert f"run {run.pk} done" in result.stdout
        assert "direct_refusal: n=" in result.stdout and "mean=1.0000" in result.stdout
        assert run.judge_prompt == "Rate the reply from -3 to 3. JSON only."
        assert server.chat_requests[0].body["messages"][0]["content"] == run.judge_prompt
        assert RewardScore.objects.filter(run=run, status="done").count() == run.n_total
        # Again: nothing is missing, nothing is sent.
        sent = len(server.chat_requests)
        again = manage(
            "score_rewards", owned_study.slug, "--model", "judge", "--scorer", "llm_judge"
        )
        assert again.returncode != 0 and "--as" in again.stderr
        again = manage(
            "score_rewards",
            owned_study.slug,
            "--model",
            "judge",
            "--scorer",
            "llm_judge",
            "--judge-prompt-file",
            str(prompt),
            "--as",
            "rita",
        )
        assert again.returncode == 0 and "0 to score (done)" in again.stdout
        assert len(server.chat_requests) == sent


@pytest.mark.django_db  # in-process only: plain rollback, no table emptying after
def test_bad_options_are_clear_errors_that_change_nothing(owned_study, researcher):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("otto", password="pw-otto-123456")
    generation_services.register_model(
        name="remote",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        actor=researcher,
    )
    cases = [
        (["--model", "nope", "--as", "rita"], "no model named 'nope' that rita may use"),
        (["--model", "remote", "--as", "otto"], "otto is not a member of study"),
        (["--model", "remote", "--as", "rita"], "must be a local transformers model"),
        (
            ["--model", "remote", "--judge-prompt-file", "/nonexistent", "--as", "rita"],
            "--judge-prompt-file is for --scorer llm_judge only",
        ),
        (["--model", "remote", "--scorer", "magic", "--as", "rita"], "invalid choice"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as error:
            call_command(
                "score_rewards", owned_study.slug, *args, stdout=StringIO(), stderr=StringIO()
            )
        assert message in str(error.value), (args, str(error.value))
    assert not RewardRun.objects.exists()
