"""register_model and generate_responses from the shell."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from studies.models import GenerationJob, LanguageModel, ResponseVariant
from tests.generation.chat_server import ChatServer

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    """Run a command as the researcher "ada" (who owns the study when the test made one)."""
    out = StringIO()
    call_command(*args, "--as", "ada", stdout=out)
    return out.getvalue()


@pytest.fixture(autouse=True)
def ada(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-123")


@pytest.fixture
def make_study(make_study, ada):
    from studies.models import StudyMembership

    def make(**kwargs):
        study = make_study(**kwargs)
        StudyMembership.objects.create(study=study, user=ada, role="owner")
        return study

    return make


def test_register_then_generate_and_wait(make_study, eager_tasks):
    study = make_study(launch=False)
    with ChatServer() as server:
        out = run(
            "register_model",
            "loopback",
            "--backend",
            "openai",
            "--set",
            f"base_url={server.url}",
            "--set",
            "model=m",
            "--set",
            "max_concurrency=4",
            "--max-tokens",
            "40",
            "--seed",
            "3",
        )
        assert "loopback: openai on queue default" in out
        assert LanguageModel.objects.get().backend_settings["max_concurrency"] == 4
        out = run("generate_responses", study.slug, "--model", "loopback", "--wait")
    assert "80 texts to write" in out and "done" in out
    assert GenerationJob.objects.get().status == "done"
    assert ResponseVariant.objects.filter(model_name="loopback").count() == 80


def test_clear_errors_for_bad_input(make_study):
    study = make_study(launch=False)
    with pytest.raises(CommandError, match="base_url"):
        run("register_model", "x", "--backend", "openai", "--set", "model=m")
    with pytest.raises(CommandError, match="KEY=VALUE"):
        run("register_model", "x", "--backend", "openai", "--set", "oops")
    with pytest.raises(CommandError, match="no model named 'ghost'"):
        run("generate_responses", study.slug, "--model", "ghost")
    with pytest.raises(CommandError, match="no study with slug 'nope'"):
        run("generate_responses", "nope", "--model", "ghost")


def test_instructions_file_overrides_one_type(make_study, eager_tasks, tmp_path):
    study = make_study(launch=False)
    study.queries.exclude(query_id="q01").delete()
    (tmp_path / "ins.yaml").write_text("redirection: Point to an official source only.\n")
    (tmp_path / "bad.yaml").write_text("- not a mapping\n")
    with ChatServer() as server:
        run(
            "register_model",
            "loopback",
            "--backend",
            "openai",
            "--set",
            f"base_url={server.url}",
            "--set",
            "model=m",
        )
        with pytest.raises(CommandError, match="must map response types"):
            run(
                "generate_responses",
                study.slug,
                "--model",
                "loopback",
                "--instructions",
                str(tmp_path / "bad.yaml"),
            )
        run(
            "generate_responses",
            study.slug,
            "--model",
            "loopback",
            "--instructions",
            str(tmp_path / "ins.yaml"),
        )
        systems = [r.body["messages"][0]["content"] for r in server.chat_requests]
    assert sum("Point to an official source only." in s for s in systems) == 1
    assert GenerationJob.objects.get().instructions["redirection"] == (
        "Point to an official source only."
    )


def test_generate_with_the_broker_down_is_a_clear_error_in_a_shell(make_study):
    """Typed in a shell while Redis is down: one line saying why, no traceback, no job left
    queued (the job is failed with the reason)."""
    import os
    import subprocess
    import sys

    from django.db import connection

    from tests.ops.conftest import CLOSED_BROKER, CLOSED_PORT, assert_closed

    study = make_study(launch=False)
    LanguageModel.objects.create(
        name="loopback",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        queue="default",
    )
    assert_closed(CLOSED_PORT)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": CLOSED_BROKER,
    }
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "generate_responses", study.slug, "--model", "loopback"]
        + ["--as", "ada"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not reach the job queue" in result.stderr
    assert "Traceback" not in result.stderr
    assert GenerationJob.objects.get().status == GenerationJob.Status.FAILED
