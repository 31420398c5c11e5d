"""The housekeeping task through a real Celery worker process and the real Redis broker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from annotation import services
from annotation.models import Participant, Slot
from annotation.tasks import release_expired_slots
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def celery_worker(tmp_path):
    purge_queues("default")
    worker = CeleryWorker("default", log_path=tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def test_worker_releases_slots_of_timed_out_participants(make_study, celery_worker, tmp_path):
    study = make_study(target_participants=2, time_limit_minutes=5)
    late = services.join_study(study=study, external_id="late", recruitment={})
    services.give_consent(participant=late)
    Participant.objects.filter(pk=late.pk).update(consented_at=timezone.now() - timedelta(hours=1))

    release_expired_slots.delay()

    log = tmp_path / "worker.log"
    wait_for_progress(
        lambda: Participant.objects.get(pk=late.pk).status == Participant.Status.TIMED_OUT,
        # A starting worker writes its banner and connection lines: that is progress.
        progress=lambda: log.stat().st_size if log.exists() else 0,
        worker=celery_worker,
        log=log,
    )
    assert Participant.objects.get(pk=late.pk).status == Participant.Status.TIMED_OUT
    assert Slot.objects.filter(study=study, status=Slot.Status.FREE).count() == 2
