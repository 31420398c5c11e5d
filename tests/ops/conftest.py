"""Outage fixtures: a broker swapped for a closed port, and app servers started as processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from config.celery import app
from studies.models import StudyMembership

ROOT = Path(__file__).resolve().parent.parent.parent

# Ports of this suite (8201-8209): servers take 8201-8205; nothing ever listens on 8209.
CLOSED_PORT = 8209


def assert_closed(port: int) -> None:
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} must stay closed"


def use_broker(url: str) -> None:
    """Point the web side's Celery app at ``url``; its pooled connections are dropped."""
    # Celery reads the CELERY_BROKER_URL variable before its own setting.
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


@contextlib.contextmanager
def broker_at(url: str) -> Iterator[None]:
    previous = app.conf.broker_url
    variable = os.environ.get("CELERY_BROKER_URL")
    use_broker(url)
    try:
        yield
    finally:
        use_broker(previous)
        if variable is None:
            del os.environ["CELERY_BROKER_URL"]


CLOSED_BROKER = f"redis://127.0.0.1:{CLOSED_PORT}/0"


@pytest.fixture
def broker_down() -> Iterator[None]:
    """The broker is unreachable: its URL names a port nothing listens on."""
    assert_closed(CLOSED_PORT)
    with broker_at(CLOSED_BROKER):
        yield


@pytest.fixture
def researcher_client(make_study):
    """A signed-in owner of a launched copy of the seed study."""
    study = make_study()
    owner = get_user_model().objects.create_user("ops-owner", password="x")
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    # A browser gets the error page, not the exception the test client would re-raise.
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    return study, owner, client


class AppServer:
    """The platform under gunicorn, DEBUG off, in a process of its own."""

    def __init__(self, port: int, *, workers: int = 1, **env: str) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.workers = workers
        self.env = env
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> AppServer:
        assert_closed(self.port)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.ops.server_settings",
            "DEBUG": "0",
            "SECRET_KEY": "ops-test-secret",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "CELERY_BROKER_URL": app.conf.broker_url,
            **self.env,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(self.workers),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Wait for the server to answer at all (any status); a generous bound for a busy machine.
        for _ in range(600):
            assert self.process.poll() is None, self.process.stderr.read().decode()
            try:
                httpx.get(f"{self.url}/healthz", timeout=10)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("the app server did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stderr.close()
