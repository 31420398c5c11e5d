"""Production readiness: the deploy checklist and migrations, as a fresh machine runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # The test runner's own conveniences must not leak into a production check.
    leaks = {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    environment = {k: v for k, v in os.environ.items() if k not in leaks}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="a-long-random-production-secret-" + "x" * 40,
        ALLOWED_HOSTS="refusallab.example.org",
        SECURE_SSL_REDIRECT="1",
        SESSION_COOKIE_SECURE="1",
        CSRF_COOKIE_SECURE="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    environment = {"SECRET_KEY": ""}
    result = manage("check", **environment)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_models_and_migrations_agree():
    result = manage("makemigrations", "--check", "--dry-run", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stdout + result.stderr
