"""What the tests of both material generators share: researchers, a command run, a login,
tasks run inline, the beat sweep."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Browser, Page

from config.celery import app

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


def run_inline(task, *args) -> None:
    """What the workers would do, done here: ``task`` and everything it sends run inline (errors
    raised), while the page under test keeps its own timing."""
    previous = app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES
    app.conf.CELERY_TASK_ALWAYS_EAGER = app.conf.CELERY_TASK_EAGER_PROPAGATES = True
    try:
        task.apply(args=list(args))
    finally:
        app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES = previous


def assert_the_sweep_fails_it(job, fail_unstarted_jobs, beat_entry: str) -> None:
    """``job``, queued and never taken, is left alone until the queue limit has passed; then
    the sweep fails it saying why, and the beat schedule's ``beat_entry`` names a real task."""
    assert fail_unstarted_jobs() == 0
    later = timezone.now() + timedelta(minutes=settings.JOB_QUEUED_LIMIT_MINUTES + 1)
    assert fail_unstarted_jobs(now=later) == 1
    job.refresh_from_db()
    assert job.status == "failed" and "not taken by a worker" in job.error
    entry = settings.CELERY_BEAT_SCHEDULE[beat_entry]
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks
