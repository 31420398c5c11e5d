"""What the tests of both material generators share: researchers, a command run, a login."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-123")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="pw-bob-123")


def manage(*args: str) -> subprocess.CompletedProcess:
    """Run ``manage.py`` as a user types it: a real process on the test database, its Celery
    tasks run inline."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_TASK_ALWAYS_EAGER": "1",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def log_in(browser: Browser, live_server, next_path: str) -> tuple[Page, list[str]]:
    """A new page logged in as ada and sent on to ``next_path``, and the list that collects
    every Content Security Policy complaint of its console (the test asserts it stays empty)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked: list[str] = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/?next={next_path}")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw-ada-123")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    return page, blocked
