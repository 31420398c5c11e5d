"""Celery tasks of pseudo-harmful generation: the job's next step, a round's generator call,
deduplication, probe batches, labels, the harm judge. Each runs on the queue of the model it
calls (the next-step task, which calls none, on the default queue)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

from modellab.models import PseudoHarmfulJob, PseudoHarmfulRound
from modellab.pseudo_harmful import services

__all__ = [
    "advance_pseudo_harmful_job",
    "classify_pseudo_harmful_batch",
    "dedup_pseudo_harmful_round",
    "fail_unstarted_pseudo_harmful_jobs",
    "generate_pseudo_harmful_round",
    "judge_pseudo_harmful_job",
    "probe_pseudo_harmful_batch",
]

logger = logging.getLogger(__name__)
S = PseudoHarmfulJob.Status
DEFAULT_QUEUE = "default"


def _advance_later(job_id: int) -> None:
    advance_pseudo_harmful_job.apply_async(args=[job_id], queue=DEFAULT_QUEUE)


@shared_task(acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=5)
def advance_pseudo_harmful_job(job_id: int) -> str:
    """Send whatever the job needs next, as PostgreSQL says: the next round's generator call,
    an open round's probe and label batches (or its close), the judge, the verification task.
    Sending it again is harmless; it is how a job starts and resumes."""
    job = PseudoHarmfulJob.objects.get(pk=job_id)
    if job.status in services.FINISHED_JOBS:
        return "finished"
    job = services.mark_job_running(job_id=job_id)
    if job.status == S.RUNNING:
        round_ = services.current_round(job)
        if round_ is None or round_.status == PseudoHarmfulRound.Status.DONE:
            round_ = services.open_next_round(job_id=job_id)
        if round_ is not None and round_.status == PseudoHarmfulRound.Status.GENERATING:
            generate_pseudo_harmful_round.apply_async(
                args=[job_id, round_.pk], queue=job.generator.queue
            )
            return f"round {round_.number}: asking the generator"
        if round_ is not None and round_.status == PseudoHarmfulRound.Status.CHECKING:
            return _check_round(job, round_)
        job.refresh_from_db()
    if job.status == S.JUDGING:
        if job.harm_judge_id and services.candidates_to_judge(job):
            judge_pseudo_harmful_job.apply_async(args=[job_id], queue=job.harm_judge.queue)
            return "judging"
        job = services.open_verification(job_id=job_id)
    return job.status


def _check_round(job: PseudoHarmfulJob, round_: PseudoHarmfulRound) -> str:
    batches = services.plan_probes(round_id=round_.pk)
    for model, batch, probe_ids in batches:
        probe_pseudo_harmful_batch.apply_async(
            args=[job.pk, round_.pk, probe_ids, batch], queue=model.queue
        )
    labels = services.plan_labels(round_id=round_.pk)
    queue = services.classification_queue(job) or DEFAULT_QUEUE
    for batch, probe_ids in labels:
        classify_pseudo_harmful_batch.apply_async(
            args=[job.pk, round_.pk, probe_ids, batch], queue=queue
        )
    if (
        not batches
        and not labels
        and services.finish_round_if_complete(job_id=job.pk, round_id=round_.pk)
    ):
        _advance_later(job.pk)
    return f"round {round_.number}: {len(batches)} probe and {len(labels)} label batch(es)"


@shared_task(bind=True, acks_late=True, autoretry_for=(DatabaseError,), max_retries=5)
def generate_pseudo_harmful_round(self, job_id: int, round_id: int) -> dict:
    """Ask the generator for the round's candidates: re-ask (at most MAX_GENERATOR_ATTEMPTS
    in all) while the answer is not a JSON array, each call paid from the budget first; then
    deduplicate (on the embedding model's queue when the job has one)."""
    from studies.tasks import backend_for

    job = PseudoHarmfulJob.objects.select_related("generator", "embedding_model").get(pk=job_id)
    round_ = PseudoHarmfulRound.objects.get(pk=round_id)
    if job.status != S.RUNNING or round_.status != PseudoHarmfulRound.Status.GENERATING:
        return {"skipped": "not waiting for candidates"}
    answered = any(round_.raw_output)
    asked_here = 0
    while services.accepted_answer(round_) is None and asked_here < services.MAX_GENERATOR_ATTEMPTS:
        reservation = services.reserve_generator_call(
            job_id=job_id, round_id=round_id, seen_calls=round_.calls
        )
        if reservation.call is None:
            return {"skipped": "another delivery holds the round, or the job stopped"}
        if reservation.ask < 1:
            services.note_round_problem(
                round_id=round_id, problem="the budget ran out before the generator was asked"
            )
            break
        asked_here += 1
        messages = services.generator_messages(job, round_, reservation.ask)
        request = services.generator_request(job.generator, messages)
        try:
            outcome = backend_for(job.generator).generate([request])[0]
        except Exception as exc:  # the backend itself broke (weights missing, …)
            logger.exception("generator of pseudo-harmful job %s failed", job_id)
            outcome = services.ChatOutcome(error=f"{type(exc).__name__}: {exc}")
        services.record_generator_answer(
            round_id=round_id,
            call=reservation.call,
            messages=messages,
            ask=reservation.ask,
            outcome=outcome,
        )
        answered = answered or outcome.ok
        round_.refresh_from_db()
    if not answered:
        # The backend already retried its transport; asking again here would spend budget.
        services.fail_round(
            job_id=job_id,
            round_id=round_id,
            error=f"round {round_.number}: the generator gave no answer; "
            + "; ".join(round_.problems[-3:]),
        )
        return {"failed": "no answer"}
    if job.embedding_model is not None and services.accepted_answer(round_) is not None:
        dedup_pseudo_harmful_round.apply_async(
            args=[job_id, round_id], queue=job.embedding_model.queue
        )
        return {"calls": round_.calls, "dedup": "embedding"}
    probes = services.store_candidates(job_id=job_id, round_id=round_id)
    _advance_later(job_id)
    return {"calls": round_.calls, "probes": probes}


@shared_task(bind=True, acks_late=True, max_retries=3)
def dedup_pseudo_harmful_round(self, job_id: int, round_id: int) -> dict:
    """Embed the job's earlier candidates and the round's new ones, then store the round's
    candidates deduplicated by text and by embedding; an embedding model that keeps failing
    leaves text deduplication only, said in the round's problems."""
    from studies.generation.embeddings import EmbeddingError, embed_texts

    job = PseudoHarmfulJob.objects.select_related("embedding_model").get(pk=job_id)
    round_ = PseudoHarmfulRound.objects.get(pk=round_id)
    if job.status != S.RUNNING or round_.status != PseudoHarmfulRound.Status.GENERATING:
        return {"skipped": "not waiting for candidates"}
    existing, new = services.texts_for_embedding(job, round_)
    vectors, problem = None, ""
    try:
        if new:
            model = job.embedding_model
            vectors = (embed_texts(model, existing), embed_texts(model, new))
    except EmbeddingError as exc:
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        problem = f"embedding deduplication skipped ({exc}); text deduplication only"
    probes = services.store_candidates(
        job_id=job_id, round_id=round_id, vectors=vectors, problem=problem
    )
    _advance_later(job_id)
    return {"probes": probes}


def _close_round(job_id: int, round_id: int) -> None:
    if services.finish_round_if_complete(job_id=job_id, round_id=round_id):
        _advance_later(job_id)


@shared_task(bind=True, acks_late=True, max_retries=5)
def probe_pseudo_harmful_batch(
    self, job_id: int, round_id: int, probe_ids: list[int], batch: str | None = None
) -> dict:
    """One target answers a batch of probes; string matching labels them here, llm_judge on
    the judge's queue. A batch of a cancelled job (or overtaken by a resume) asks nothing."""
    from studies.tasks import backend_for

    if not services.job_is_live(job_id):
        return {"skipped": "job not running"}
    probes = services.claim_probes(probe_ids=probe_ids, batch=batch)
    if not probes:
        _close_round(job_id, round_id)
        return {"skipped": "nothing open"}
    model = probes[0].model
    requests = [services.probe_request(p) for p in probes]
    try:
        outcomes = backend_for(model).generate(requests)
    except Exception as exc:  # the backend itself broke
        logger.exception("probe batch of pseudo-harmful job %s failed on %s", job_id, model.name)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.fail_probes(
            probe_ids=[p.pk for p in probes], error=f"backend error: {exc}", batch=batch
        )
        _close_round(job_id, round_id)
        return {"failed": len(probes)}
    result = services.record_probes(
        probes=probes, requests=requests, outcomes=outcomes, batch=batch
    )
    if result.retry_ids:
        attempt = max(p.attempts for p in probes)
        probe_pseudo_harmful_batch.apply_async(
            args=[job_id, round_id, result.retry_ids, batch],
            queue=model.queue,
            countdown=min(2**attempt, 60),
        )
    if result.generated:
        job = PseudoHarmfulJob.objects.select_related("classifier_model").get(pk=job_id)
        queue = services.classification_queue(job)
        if queue is None:
            _label(job, round_id, result.generated, batch)
        else:
            classify_pseudo_harmful_batch.apply_async(
                args=[job_id, round_id, result.generated, batch], queue=queue
            )
    _close_round(job_id, round_id)
    return {"generated": len(result.generated), "retrying": len(result.retry_ids)}


def _label(job: PseudoHarmfulJob, round_id: int, probe_ids: list[int], batch) -> int:
    probes = services.probes_to_label(probe_ids=probe_ids, batch=batch)
    if not probes:
        return 0
    classifications = services.classify_probes(job, probes)
    return services.record_labels(probes=probes, classifications=classifications, batch=batch)


@shared_task(bind=True, acks_late=True, max_retries=3)
def classify_pseudo_harmful_batch(
    self, job_id: int, round_id: int, probe_ids: list[int], batch: str | None = None
) -> dict:
    """Label a batch of target answers (three-way); a classifier that keeps failing labels
    them unparsed. A batch of a cancelled job labels nothing."""
    job = PseudoHarmfulJob.objects.select_related("classifier_model").get(pk=job_id)
    if job.status != S.RUNNING:
        return {"skipped": "job not running"}
    try:
        labelled = _label(job, round_id, probe_ids, batch)
    except Exception as exc:  # the judge's endpoint or the classifier broke
        logger.exception("labelling a batch of pseudo-harmful job %s failed", job_id)
        if self.request.retries < self.max_retries:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
        services.label_unparsed(
            probe_ids=probe_ids, error=f"{type(exc).__name__}: {exc}", batch=batch
        )
        labelled = 0
    _close_round(job_id, round_id)
    return {"labelled": labelled}


@shared_task(bind=True, acks_late=True, max_retries=3)
def judge_pseudo_harmful_job(self, job_id: int) -> dict:
    """The harm judge labels every kept candidate not labelled yet (harmful ones are dropped),
    then the verification task is opened."""
    from modellab.classifiers.labels import HARMFULNESS
    from modellab.material.judges import MaterialJudge

    job = PseudoHarmfulJob.objects.select_related("harm_judge").get(pk=job_id)
    if job.status != S.JUDGING:
        return {"skipped": "not judging"}
    candidates = services.candidates_to_judge(job)
    if candidates:
        judge = MaterialJudge(
            model=job.harm_judge, scheme=HARMFULNESS, prompt=job.harm_judge_prompt or None
        )
        try:
            labels = judge.label([{"prompt": c.text} for c in candidates])
        except Exception as exc:  # the judge's backend broke as a whole
            logger.exception("harm judge of pseudo-harmful job %s failed", job_id)
            if self.request.retries < self.max_retries:
                raise self.retry(exc=exc, countdown=min(2**self.request.retries * 5, 300)) from exc
            services.fail_job(job_id=job_id, error=f"the harm judge failed: {exc}")
            return {"failed": str(exc)}
        services.record_judgements(job_id=job_id, candidates=candidates, labels=labels)
    job = services.open_verification(job_id=job_id)
    return {"judged": len(candidates), "status": job.status}


@shared_task(acks_late=True)
def fail_unstarted_pseudo_harmful_jobs() -> int:
    """Beat: fail jobs no worker took, so their page stops waiting."""
    return services.fail_unstarted_jobs()
