"""The housekeeping task through a real Celery worker process and the real Redis broker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from annotation import services
from annotation.models import Participant, Slot
from annotation.tasks import release_expired_slots
from config.celery import app

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


def worker_database_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{user}{password}@{host}/{db['NAME']}"


@pytest.fixture
def celery_worker():
    """A worker process on the `default` queue, pointed at the test database."""
    app.control.purge()
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "SECRET_KEY": "worker-test"}
    env.pop("CELERY_TASK_ALWAYS_EAGER", None)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-Q",
            "default",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def test_worker_releases_slots_of_timed_out_participants(make_study, celery_worker):
    study = make_study(target_participants=2, time_limit_minutes=5)
    late = services.join_study(study=study, external_id="late", recruitment={})
    services.give_consent(participant=late)
    Participant.objects.filter(pk=late.pk).update(consented_at=timezone.now() - timedelta(hours=1))

    release_expired_slots.delay()

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if Participant.objects.get(pk=late.pk).status == Participant.Status.TIMED_OUT:
            break
        assert celery_worker.poll() is None, celery_worker.stdout.read()
        time.sleep(0.3)
    assert Participant.objects.get(pk=late.pk).status == Participant.Status.TIMED_OUT
    assert Slot.objects.filter(study=study, status=Slot.Status.FREE).count() == 2
