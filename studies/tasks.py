"""Celery tasks of the researcher side: generation jobs and their batches, analyses, exports."""

from __future__ import annotations

import json
import logging

from celery import shared_task
from django.db import DatabaseError

from studies.generation import services
from studies.generation.backends import Backend, build_backend
from studies.models import GenerationJob, LanguageModel

logger = logging.getLogger(__name__)

# One backend object per worker process and model settings: local weights load once and stay.
_backends: dict[tuple[str, str], Backend] = {}


def backend_for(model: LanguageModel) -> Backend:
    key = (model.backend, json.dumps(model.backend_settings, sort_keys=True))
    if key not in _backends:
        _backends[key] = build_backend(model.backend, model.backend_settings)
    return _backends[key]


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def dispatch_generation_job(job_id: int) -> int:
    """Fan a job out into batch tasks on its model's queue; returns how many were sent."""
    job = GenerationJob.objects.select_related("model").get(pk=job_id)
    if job.status not in (GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING):
        return 0
    job = services.mark_job_running(job=job)
    batches = services.plan_batches(job)
    for item_ids in batches:
        generate_batch.apply_async(args=[job_id, item_ids], queue=job.model.queue)
    if not batches:
        services.finish_job_if_complete(job_id=job_id)
    return len(batches)


@shared_task(bind=True, acks_late=True, max_retries=5)
def generate_batch(self, job_id: int, item_ids: list[int]) -> dict:
    """Write one batch of texts; a redelivered or retried batch only fills what is still open."""
    if services.job_is_cancelled(job_id):
        return {"skipped": "cancelled"}
    items = services.claim_batch(job_id=job_id, item_ids=item_ids)
    if not items:
        services.finish_job_if_complete(job_id=job_id)
        return {"skipped": "nothing open"}
    model = items[0].model
    calls = services.prepare_calls(items)
    try:
        outcomes = backend_for(model).generate([call.request for call in calls])
    except Exception as exc:  # the backend itself broke (weights missing, out of memory, …)
        logger.exception("batch of job %s failed on model %s", job_id, model.name)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.fail_items(item_ids=[i.pk for i in items], error=f"backend error: {exc}")
        services.finish_job_if_complete(job_id=job_id)
        return {"failed": len(items)}
    result = services.record_batch_results(calls=calls, outcomes=outcomes)
    if result.retry_ids:
        attempt = max(i.attempts for i in items)
        generate_batch.apply_async(
            args=[job_id, result.retry_ids], queue=model.queue, countdown=min(2**attempt, 60)
        )
    services.finish_job_if_complete(job_id=job_id)
    return {"done": result.done, "failed": result.failed, "retrying": len(result.retry_ids)}


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def compute_analysis(result_id: int) -> str:
    """Compute a study's statistics from one read of its ratings and store the report."""
    from studies import analysis_jobs

    return analysis_jobs.compute(result_id).status


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def compute_power_analysis(power_id: int) -> str:
    """Simulate a study's planned design (power planning); progress lands in its row."""
    from studies import power_jobs

    return power_jobs.compute(power_id).status


@shared_task(acks_late=True)
def refresh_live_analyses() -> int:
    """Beat: fail analyses (and power analyses) no worker finished, then recompute live
    studies with new ratings."""
    from studies import analysis_jobs, power_jobs

    power_jobs.fail_stuck()
    return analysis_jobs.refresh_live_studies()


@shared_task(acks_late=True)
def fail_unstarted_generation_jobs() -> int:
    """Beat: fail generation jobs no worker took, so their study is not left generating."""
    return services.fail_unstarted_jobs()


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=3)
def run_export_job(job_id: int) -> str:
    """Build one export's file (tables, codebook, package) with progress in its row."""
    from studies.datasets import exports

    return exports.run_export(job_id).status


@shared_task(acks_late=True)
def expire_exports() -> int:
    """Beat: delete expired export files (the job is marked expired); fail untaken jobs."""
    from studies.datasets import exports

    return exports.expire_exports()
