"""The quality sweep through a real Celery worker process and the real Redis broker."""

from __future__ import annotations

import pytest

from annotation.models import Participant
from annotation.tasks import screen_finished_participants
from studies.spec.model import QualitySpec, SpeederRuleSpec
from tests.lifecycle.participants import complete
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def celery_worker(tmp_path):
    purge_queues("default")
    worker = CeleryWorker("default", log_path=tmp_path / "worker.log").start()
    yield worker
    worker.stop()


def test_the_worker_flags_a_participant_who_finished(make_study, celery_worker, tmp_path):
    rules = QualitySpec(speeders=SpeederRuleSpec(enabled=True, min_seconds=3600))
    study = make_study(target_participants=2, quality=rules)
    fast = complete(study, "fast")

    screen_finished_participants.delay()

    log = tmp_path / "worker.log"
    wait_for_progress(
        lambda: Participant.objects.get(pk=fast.pk).screened_at is not None,
        progress=lambda: log.stat().st_size if log.exists() else 0,
        worker=celery_worker,
        log=log,
    )
    fast.refresh_from_db()
    assert [f["rule"] for f in fast.flags] == ["speeders"]
    assert fast.excluded and fast.status == "completed"
