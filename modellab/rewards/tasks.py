"""Celery tasks of reward scoring: fan a run out into batches on its model's queue, score them."""

from __future__ import annotations

import json
import logging

from celery import shared_task
from django.db import DatabaseError

from modellab.models import RewardRun
from modellab.rewards import scorers, services

logger = logging.getLogger(__name__)

__all__ = ["dispatch_reward_run", "fail_unstarted_reward_runs", "score_reward_batch"]

# One scorer per worker process and settings; a reward model's weights load once and stay
# (scorers.load_reward_model keeps them), a judge reuses the registry backend's connections.
_scorers: dict[tuple, object] = {}


def scorer_for(run: RewardRun):
    model = run.model
    key = (
        run.scorer,
        model.backend,
        json.dumps(model.backend_settings, sort_keys=True),
        run.prompt_sha256,
        model.max_tokens,
        model.seed,
    )
    if key not in _scorers:
        if run.scorer == RewardRun.Scorer.REWARD_MODEL:
            _scorers[key] = scorers.RewardModelScorer.from_settings(model.backend_settings)
        else:
            from studies.tasks import backend_for

            _scorers[key] = scorers.JudgeScorer(
                backend=backend_for(model),
                judge_prompt=run.judge_prompt,
                max_tokens=model.max_tokens,
                seed=model.seed,
            )
    return _scorers[key]


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def dispatch_reward_run(run_id: int) -> int:
    """Fan a run out into batch tasks on its model's queue; returns how many were sent."""
    run = RewardRun.objects.select_related("model").get(pk=run_id)
    if run.status not in services.OPEN_RUNS:
        return 0
    services.mark_run_running(run=run)
    batches = services.plan_batches(run)
    for batch, score_ids in batches:
        score_reward_batch.apply_async(args=[run_id, score_ids, batch], queue=run.model.queue)
    if not batches:
        services.finish_run_if_complete(run_id=run_id)
    return len(batches)


@shared_task(bind=True, acks_late=True, max_retries=5)
def score_reward_batch(self, run_id: int, score_ids: list[int], batch: str | None = None) -> dict:
    """Score one batch; a redelivered or retried batch only fills what is still open, and a
    batch of a cancelled run (or overtaken by a restart) scores nothing."""
    if services.run_is_cancelled(run_id):
        return {"skipped": "cancelled"}
    scores = services.claim_batch(run_id=run_id, score_ids=score_ids, batch=batch)
    if not scores:
        services.finish_run_if_complete(run_id=run_id)
        return {"skipped": "nothing open"}
    run = scores[0].run
    conversations = services.conversations_for(scores)
    try:
        outcomes = scorer_for(run).score(conversations)
    except Exception as exc:  # the scorer itself broke (out of memory, a driver error, …)
        logger.exception("reward batch of run %s failed on model %s", run_id, run.model.name)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.fail_scores(
            score_ids=[s.pk for s in scores], error=f"scorer error: {exc}", batch=batch
        )
        services.finish_run_if_complete(run_id=run_id)
        return {"failed": len(scores)}
    result = services.record_batch(
        scores=scores, conversations=conversations, outcomes=outcomes, batch=batch
    )
    if result.retry_ids:
        attempt = max(s.attempts for s in scores)
        score_reward_batch.apply_async(
            args=[run_id, result.retry_ids, batch],
            queue=run.model.queue,
            countdown=min(2**attempt, 60),
        )
    services.finish_run_if_complete(run_id=run_id)
    return {
        "done": result.done,
        "failed": result.failed,
        "unparsed": result.unparsed,
        "retrying": len(result.retry_ids),
    }


@shared_task(acks_late=True)
def fail_unstarted_reward_runs() -> int:
    """Beat: fail reward runs no worker took, so their page does not wait for ever."""
    return services.fail_unstarted_runs()
