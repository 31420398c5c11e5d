"""Celery tasks of query–scenario generation: the round loop (generate, judge) and the sweep."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from modellab.models import QueryScenarioJob, QueryScenarioRound
from modellab.query_scenarios import services

__all__ = [
    "dispatch_query_scenario_job",
    "fail_unstarted_query_scenario_jobs",
    "generate_query_scenario_round",
    "judge_query_scenario_round",
]

logger = logging.getLogger(__name__)
RoundStatus = QueryScenarioRound.Status


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def dispatch_query_scenario_job(job_id: int) -> str:
    """Send the job's next step to its model's queue: the open round's stage (generate on the
    generator's queue, judge on the judge's), a new round while rounds and budget remain, or
    the human verification task once the rounds are over. Sending it again resumes a job."""
    if not services.job_is_open(job_id):
        return "not open"
    job = services.mark_job_running(job_id=job_id)
    round_ = services.open_next_round(job_id=job_id)
    if round_ is None:
        job = services.finish_rounds(job_id=job_id)
        return job.status
    job = QueryScenarioJob.objects.select_related("generator", "intent_judge").get(pk=job_id)
    if round_.status == RoundStatus.GENERATING:
        generate_query_scenario_round.apply_async(
            args=[job_id, round_.number], queue=job.generator.queue
        )
        return f"round {round_.number}: generate"
    judge_query_scenario_round.apply_async(
        args=[job_id, round_.number], queue=job.intent_judge.queue
    )
    return f"round {round_.number}: judge"


@shared_task(bind=True, acks_late=True, max_retries=5)
def generate_query_scenario_round(self, job_id: int, number: int) -> dict:
    """The generator writes the round's instances; they are read, deduplicated and stored
    once, then judged. A round of a cancelled job, or one already stored, asks nothing."""
    from studies.tasks import backend_for

    if not services.job_is_open(job_id):
        return {"skipped": "job not open"}
    job = QueryScenarioJob.objects.select_related("generator", "intent_judge", "embedding_model")
    job = job.get(pk=job_id)
    round_ = QueryScenarioRound.objects.get(job=job, number=number)
    if round_.status != RoundStatus.GENERATING:
        return {"skipped": f"round {number} is {round_.status}"}
    try:
        answer = services.ask_generator(job, round_, backend_for(job.generator))
        duplicates, candidate_pks = services.dedupe_entries(job, round_, answer)
    except Exception as exc:  # the backend or the embedding model broke as a whole
        logger.exception("round %s of query–scenario job %s failed", number, job_id)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.fail_round(job_id=job_id, number=number, error=f"{type(exc).__name__}: {exc}")
        return {"failed": str(exc)}
    stored = services.store_round_answer(
        job_id=job_id,
        number=number,
        answer=answer,
        duplicates=duplicates,
        candidate_pks=candidate_pks,
    )
    if stored is None:
        return {"skipped": "stored already"}
    judge_query_scenario_round.apply_async(args=[job_id, number], queue=job.intent_judge.queue)
    return {"entries": len(answer.entries), "calls": answer.calls, "problems": len(answer.problems)}


@shared_task(bind=True, acks_late=True, max_retries=3)
def judge_query_scenario_round(self, job_id: int, number: int) -> dict:
    """The intent judge reads each new candidate's query with both its scenarios (only those
    not judged yet), then the round closes and the job moves on."""
    from studies.tasks import backend_for

    if not services.job_is_open(job_id):
        return {"skipped": "job not open"}
    job = QueryScenarioJob.objects.select_related("intent_judge").get(pk=job_id)
    round_ = QueryScenarioRound.objects.get(job=job, number=number)
    if round_.status != RoundStatus.CHECKING:
        return {"skipped": f"round {number} is {round_.status}"}
    candidates = services.candidates_to_judge(job_id=job_id, number=number)
    short, judged = False, 0
    if candidates:
        try:
            pairs, short = services.judge_candidates(job, candidates, backend_for(job.intent_judge))
        except Exception as exc:  # the judge's backend could not even be built
            logger.exception("judging round %s of query–scenario job %s failed", number, job_id)
            if self.request.retries < self.max_retries:
                raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
            services.fail_round(job_id=job_id, number=number, error=f"judge: {exc}")
            return {"failed": str(exc)}
        judged = services.record_judgements(job_id=job_id, pairs=pairs)
    note = ""
    if short:
        unjudged = len(services.candidates_to_judge(job_id=job_id, number=number))
        note = f"the budget of {job.budget} calls ran short in round {number}" + (
            f"; {unjudged} candidate(s) were not judged" if unjudged else ""
        )
    if services.close_round(job_id=job_id, number=number, note=note):
        dispatch_query_scenario_job.delay(job_id)
    return {"judged": judged}


@shared_task(acks_late=True)
def fail_unstarted_query_scenario_jobs() -> int:
    """Beat: fail jobs no worker took, so their page stops waiting."""
    return services.fail_unstarted_jobs()
