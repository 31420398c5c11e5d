"""Fixtures for generation tests: tasks run inline, and a loopback chat-completions server."""

from __future__ import annotations

import pytest

from config.celery import app
from tests.generation.chat_server import ChatServer


@pytest.fixture
def eager_tasks():
    """Tasks run inline, so a job's whole fan-out happens inside the test."""
    # The app reads Django's CELERY_-prefixed settings, so the prefixed keys are the ones to set.
    previous = app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES
    app.conf.CELERY_TASK_ALWAYS_EAGER = app.conf.CELERY_TASK_EAGER_PROPAGATES = True
    yield
    app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES = previous


@pytest.fixture
def chat_server():
    with ChatServer() as server:
        yield server
