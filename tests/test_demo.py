"""`make demo`, run as a user types it: it serves the platform and prints working URLs and login."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Waits on progress (lines printed, the port answering) with a bound generous enough for a busy
# CI machine: migrations and the example imports take a while there.
STARTUP_BOUND_S = 300


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_demo(env: dict[str, str]) -> tuple[str, int]:
    """Start `make demo`, wait until it serves, check its pages, stop it; returns its output."""
    port = _free_port()
    environment = {
        k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    # Its own collected static files: collecting into the checkout's staticfiles/ rewrites
    # files that the suite's other tests are serving at that moment.
    static_root = tempfile.mkdtemp(prefix="refusallab-demo-static-")
    environment.update(
        env, PORT=str(port), DEMO_PASSWORD="demo-pass-123", CI="", STATIC_ROOT=static_root
    )
    process = subprocess.Popen(
        ["make", "demo"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP_BOUND_S
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
            if "serving on" in line:
                break
        text = "".join(output)
        assert "serving on" in text, text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for _ in range(120):
                try:
                    client.get("/accounts/login/")
                    break
                except httpx.TransportError:
                    time.sleep(0.5)
            participant_url = re.search(r"participant:\s+(\S+)", text).group(1)
            consent = client.get(participant_url, follow_redirects=True)
            assert consent.status_code == 200 and "consent" in consent.text.lower()
            login_page = client.get("/accounts/login/")
            assert login_page.status_code == 200
            token = client.cookies["csrftoken"]
            signed_in = client.post(
                "/accounts/login/",
                data={
                    "username": "researcher",
                    "password": "demo-pass-123",
                    "csrfmiddlewaretoken": token,
                },
                follow_redirects=True,
            )
            assert signed_in.status_code == 200
            studies = client.get("/studies/")
            assert "refusal-perception" in studies.text
            _assert_static_files_compressed_and_cached(client, Path(static_root), studies.text)
        return text, port
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(static_root, ignore_errors=True)


def _assert_static_files_compressed_and_cached(
    client: httpx.Client, static_root: Path, page: str
) -> None:
    """The demo (DEBUG on) serves static files as production does: pages link hashed names,
    and plotly.js (4.8 MB, once sent uncompressed) goes out gzip-compressed, cached for good."""
    paths = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    assert f"/static/{paths['css/refusallab.css']}" in page
    hashed = paths["vendor/plotly/plotly.min.js"]
    with client.stream("GET", f"/static/{hashed}", headers={"Accept-Encoding": "gzip"}) as response:
        sent = sum(len(chunk) for chunk in response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "immutable" in response.headers["cache-control"]
    assert "max-age=315360000" in response.headers["cache-control"]
    assert sent < 2_000_000


@pytest.fixture
def fresh_postgres_database() -> str:
    name = f"rl_demo_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_make_demo_on_postgresql_with_a_worker(fresh_postgres_database):
    text, _ = _run_demo(
        {
            "DATABASE_URL": fresh_postgres_database,
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/9",
        }
    )
    assert "tasks:    Celery worker" in text
    assert "login: researcher / demo-pass-123" in text


def test_make_demo_falls_back_to_sqlite_and_in_process_tasks(tmp_path):
    text, _ = _run_demo(
        {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
            # Nothing listens on port 1: the demo must notice and run tasks in-process.
            "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",
        }
    )
    assert "in-process" in text
    assert "login: researcher / demo-pass-123" in text
