"""Celery tasks of model behaviour: fan a classification run out into batches, label them."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from modellab.behaviour import services
from modellab.classifiers.base import Classifier
from modellab.models import ClassificationRun

__all__ = ["classify_batch", "dispatch_classification_run"]

logger = logging.getLogger(__name__)

# One classifier per worker process and run settings: a judge's HTTP client (or local
# weights) is set up once and reused by every batch of the run.
_classifiers: dict[str, Classifier] = {}


def classifier_for(run: ClassificationRun) -> Classifier:
    if run.settings_key not in _classifiers:
        from modellab.classifiers import build_classifier

        _classifiers[run.settings_key] = build_classifier(
            run.classifier,
            scheme=run.scheme,
            judge_model=run.judge_model,
            judge_prompt=run.judge_prompt or None,
            phrases=run.phrases,
            **(
                {"max_attempts": run.params["judge_max_attempts"]}
                if run.params.get("judge_max_attempts")
                else {}
            ),
        )
    return _classifiers[run.settings_key]


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def dispatch_classification_run(run_id: int) -> int:
    """Put a run's unlabelled rows into batch tasks on the classifier's queue; returns how many
    batches were sent."""
    run = ClassificationRun.objects.filter(pk=run_id).first()
    if run is None or run.status not in services.OPEN_RUN:
        return 0
    run = services.mark_run_running(run_id=run_id)
    batches = services.plan_batches(run=run)
    queue = services.queue_of(run)
    for batch in batches:
        classify_batch.apply_async(args=[run_id, batch], queue=queue)
    if not batches:
        services.finish_run_if_complete(run_id=run_id)
    return len(batches)


@shared_task(bind=True, acks_late=True, max_retries=5)
def classify_batch(self, run_id: int, batch: str) -> dict:
    """Label one batch; a redelivered or retried batch only labels what is still open."""
    if services.run_is_cancelled(run_id):
        return {"skipped": "cancelled"}
    rows = services.claim_batch(run_id=run_id, batch=batch)
    if not rows:
        services.finish_run_if_complete(run_id=run_id)
        return {"skipped": "nothing open"}
    run = ClassificationRun.objects.select_related("judge_model").get(pk=run_id)
    inputs = [services.classifier_input(row.item) for row in rows]
    try:
        results = classifier_for(run).classify(inputs)
        if len(results) != len(inputs):
            raise RuntimeError(f"the classifier gave {len(results)} labels for {len(inputs)}")
    except Exception as exc:  # the classifier itself broke (judge unreachable, bad settings)
        logger.exception("batch %s of classification run %s failed", batch, run_id)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.fail_labels(
            run_id=run_id, label_ids=[r.pk for r in rows], error=f"classifier error: {exc}"
        )
        services.finish_run_if_complete(run_id=run_id)
        return {"failed": len(rows)}
    written = services.record_labels(
        run_id=run_id,
        batch=batch,
        label_ids=[r.pk for r in rows],
        results=results,
        scheme=run.scheme,
    )
    services.finish_run_if_complete(run_id=run_id)
    return {"labelled": written}
