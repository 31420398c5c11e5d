"""Celery tasks of the false-refusal benchmark: fan-out, generation batches, classification."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from modellab.false_refusal import services
from modellab.models import FalseRefusalRun

__all__ = [
    "fail_unstarted_false_refusal_runs",
    "classify_false_refusal_batch",
    "dispatch_false_refusal_run",
    "generate_false_refusal_batch",
]

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def dispatch_false_refusal_run(run_id: int) -> int:
    """Send a run's open batches to each model's queue (and any unlabelled items to the
    classifier); returns how many batches were sent. Sending it again resumes a run."""
    run = FalseRefusalRun.objects.get(pk=run_id)
    if run.status in services.FINISHED_RUN_STATUSES:
        return 0
    run = services.mark_run_running(run_id=run_id)
    batches = services.plan_generation(run)
    for model, batch, item_ids in batches:
        generate_false_refusal_batch.apply_async(args=[run_id, item_ids, batch], queue=model.queue)
    labels = services.plan_classification(run)
    for batch, item_ids in labels:
        classify_false_refusal_batch.apply_async(
            args=[run_id, item_ids, batch], queue=services.classification_queue(run)
        )
    if not batches and not labels:
        services.finish_run_if_complete(run_id=run_id)
    return len(batches) + len(labels)


@shared_task(bind=True, acks_late=True, max_retries=5)
def generate_false_refusal_batch(
    self, run_id: int, item_ids: list[int], batch: str | None = None
) -> dict:
    """One model answers a batch of prompts; the answers then go to the classifier. A batch of
    a cancelled run (or overtaken by a resume) asks nothing."""
    from studies.tasks import backend_for

    if services.run_is_cancelled(run_id):
        return {"skipped": "cancelled"}
    items = services.claim_generation(run_id=run_id, item_ids=item_ids, batch=batch)
    if not items:
        services.finish_run_if_complete(run_id=run_id)
        return {"skipped": "nothing open"}
    model = items[0].model
    requests = [services.chat_request(item) for item in items]
    try:
        outcomes = backend_for(model).generate(requests)
    except Exception as exc:  # the backend itself broke (weights missing, out of memory, …)
        logger.exception("false-refusal batch of run %s failed on model %s", run_id, model.name)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.fail_items(
            item_ids=[i.pk for i in items], error=f"backend error: {exc}", batch=batch
        )
        services.finish_run_if_complete(run_id=run_id)
        return {"failed": len(items)}
    result = services.record_generation(
        items=items, requests=requests, outcomes=outcomes, batch=batch
    )
    if result.retry_ids:
        attempt = max(i.attempts for i in items)
        generate_false_refusal_batch.apply_async(
            args=[run_id, result.retry_ids, batch],
            queue=model.queue,
            countdown=min(2**attempt, 60),
        )
    if result.generated:
        run = FalseRefusalRun.objects.select_related("judge_model").get(pk=run_id)
        classify_false_refusal_batch.apply_async(
            args=[run_id, result.generated, batch], queue=services.classification_queue(run)
        )
    services.finish_run_if_complete(run_id=run_id)
    return {
        "generated": len(result.generated),
        "failed": result.failed,
        "retrying": len(result.retry_ids),
    }


@shared_task(bind=True, acks_late=True, max_retries=3)
def classify_false_refusal_batch(
    self, run_id: int, item_ids: list[int], batch: str | None = None
) -> dict:
    """Label a batch of responses; a classifier that keeps failing labels them unparsed. A
    batch of a cancelled run (or overtaken by a resume) labels nothing."""
    run = FalseRefusalRun.objects.select_related("judge_model").get(pk=run_id)
    if run.status == FalseRefusalRun.Status.CANCELLED:
        return {"skipped": "cancelled"}
    items = services.items_to_classify(run_id=run_id, item_ids=item_ids, batch=batch)
    if not items:
        services.finish_run_if_complete(run_id=run_id)
        return {"skipped": "nothing to label"}
    try:
        classifications = services.classify_items(run, items)
    except Exception as exc:  # the judge's endpoint or the classifier itself broke
        logger.exception("classifying a batch of false-refusal run %s failed", run_id)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.label_unparsed(
            item_ids=[i.pk for i in items], error=f"{type(exc).__name__}: {exc}", batch=batch
        )
        services.finish_run_if_complete(run_id=run_id)
        return {"unparsed": len(items)}
    labelled = services.record_labels(items=items, classifications=classifications, batch=batch)
    services.finish_run_if_complete(run_id=run_id)
    return {"labelled": labelled}


@shared_task(acks_late=True)
def fail_unstarted_false_refusal_runs() -> int:
    """Beat: fail runs no worker took, so their page stops waiting."""
    return services.fail_unstarted_runs()
