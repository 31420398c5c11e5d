"""Real Celery worker processes for integration tests, pointed at the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parent.parent


def worker_database_url() -> str:
    """The test database (pytest-django's test_… name) as a URL a subprocess can use."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{user}{password}@{host}/{db['NAME']}"


class CeleryWorker:
    """One `celery worker` process (solo pool: a kill -9 takes the task down with it)."""

    def __init__(self, queues: str = "default", log_path: Path | None = None, **env: str):
        self.queues = queues
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> CeleryWorker:
        env = {**os.environ, "DATABASE_URL": worker_database_url(), "SECRET_KEY": "worker-test"}
        env.pop("CELERY_TASK_ALWAYS_EAGER", None)
        env.update(self.env)
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                self.queues,
                "--pool",
                "solo",
                "--prefetch-multiplier",
                "1",
                "--without-gossip",
                "--without-mingle",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Die at once, mid-task, leaving the task's message unacknowledged."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def purge_queues(*queues: str) -> None:
    """Drop messages left on the broker by earlier runs, so a test starts from nothing."""
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in queues:
            try:
                channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue that never existed has nothing to purge
                pass


# A wait fails when nothing moves for this long, not when a quiet machine's schedule is missed:
# on a shared, busy CI machine one batch of the tiny model has taken 17 s.
STALL_BOUND_S = 300.0


def wait_for_progress(
    condition,
    *,
    progress,
    worker: CeleryWorker,
    log: Path | None = None,
    stall_s: float = STALL_BOUND_S,
) -> None:
    """Wait until ``condition()`` holds while ``progress()`` (any comparable value: rows done,
    bytes logged) keeps changing; fail when the worker dies or nothing changed for stall_s."""
    last, since = progress(), time.monotonic()
    while not condition():
        tail = log.read_text()[-3000:] if log and log.exists() else ""
        assert worker.alive(), "the worker died; its log:\n" + tail
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        assert time.monotonic() - since < stall_s, f"no progress for {stall_s:.0f} s; log:\n{tail}"
        time.sleep(0.2)
