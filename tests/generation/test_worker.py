"""A generation job on real Celery worker processes with a tiny local transformers model:
results land in PostgreSQL, and a worker killed mid-job is replaced without losing or
doubling a single text."""

from __future__ import annotations

import time

import pytest

from studies.generation import selectors, services
from studies.models import GenerationItem, GenerationJob, ResponseVariant
from tests.generation.tiny_model import build_tiny_chat_model
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)

# Seconds before the broker hands a dead worker's unacknowledged batch to another worker.
VISIBILITY_TIMEOUT = 3


def test_killed_worker_mid_job_finishes_with_no_duplicate_and_no_gap(make_study, tmp_path):
    purge_queues("default", "gpu")
    model_dir = build_tiny_chat_model(tmp_path / "tiny")
    model = services.register_model(
        name="tiny-local",
        backend="transformers",
        backend_settings={"path": str(model_dir), "device": "cpu", "batch_size": 2},
        queue="gpu",
        temperature=0.0,
        max_tokens=48,
    )
    study = make_study(launch=False)
    log = tmp_path / "worker.log"
    env = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    worker = CeleryWorker("default,gpu", log_path=log, **env).start()
    try:
        job = services.start_generation_job(study=study, model=model)
        done = GenerationItem.objects.filter(job=job, status="done")
        running = GenerationItem.objects.filter(job=job, status="running")
        # Kill while a batch is inside the model, after some batches have been stored.

        def moved() -> tuple[int, int]:
            # Progress is texts stored and the worker's log growing (model loading, batches).
            return done.count(), log.stat().st_size if log.exists() else 0

        wait_for_progress(
            lambda: done.count() >= 8 and running.exists(), progress=moved, worker=worker, log=log
        )
        worker.kill()
        in_flight = set(running.values_list("pk", flat=True))
        assert in_flight and done.count() < 80
        time.sleep(VISIBILITY_TIMEOUT + 1)
        worker = CeleryWorker("default,gpu", log_path=log, **env).start()
        wait_for_progress(
            lambda: selectors.job_progress(job)["finished"], progress=moved, worker=worker, log=log
        )
    finally:
        worker.stop()

    job.refresh_from_db()
    assert job.status == GenerationJob.Status.DONE, job.error
    items = GenerationItem.objects.filter(job=job)
    assert items.count() == 80 and set(items.values_list("status", flat=True)) == {"done"}
    assert all(item.text and item.completion_tokens for item in items)
    variants = ResponseVariant.objects.filter(query__study=study, model_name="tiny-local")
    assert variants.count() == 80
    assert variants.values("query", "response_type").distinct().count() == 80
    # The batch that was in flight at the kill was run again by the second worker.
    assert set(items.filter(attempts=2).values_list("pk", flat=True)) >= in_flight
