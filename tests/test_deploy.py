"""Production readiness: the deploy checklist and migrations, as a fresh machine runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A well-formed Fernet key that is no one's: 32 bytes, url-safe base64.
PRODUCTION_KEY = "YS1wcm9kdWN0aW9uLWtleS1mb3ItZGVwbG95LXRlc3Q="


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
        RECRUITMENT_ID_KEYS=PRODUCTION_KEY,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_deploy_warns_when_recruitment_ids_cannot_be_stored():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        SECRET_KEY="a-long-random-production-secret-" + "x" * 40,
        ALLOWED_HOSTS="refusallab.example.org",
        RECRUITMENT_ID_KEYS="",
    )
    assert result.returncode != 0
    assert "annotation.W001" in result.stderr and "RECRUITMENT_ID_KEYS is not set" in result.stderr


def test_a_malformed_recruitment_key_stops_every_command():
    result = manage("check", SECRET_KEY="x" * 50, RECRUITMENT_ID_KEYS=PRODUCTION_KEY + ",not-a-key")
    assert result.returncode != 0
    assert "annotation.E001" in result.stderr and "key 2 is not a Fernet key" in result.stderr
    assert "not-a-key" not in result.stderr  # a key is never printed


def test_production_refuses_to_start_without_a_secret_key():
    environment = {"SECRET_KEY": ""}
    result = manage("check", **environment)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_models_and_migrations_agree():
    result = manage("makemigrations", "--check", "--dry-run", SECRET_KEY="x" * 50)
    assert result.returncode == 0, result.stdout + result.stderr
