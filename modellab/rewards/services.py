"""Writes of reward scoring: start (or resume) a run, claim and record batches, finish it.

Exactly once: each dispatch puts the pending scores no batch holds into batches (a UUID per
batch on the rows); a batch task claims and writes only its own rows that are still open, so a
redelivered batch redoes its rows, and a batch overtaken by a cancel (its rows cancelled) or by
a cancel and a restart (its rows in another batch) stores nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.dispatch import send_on_commit
from modellab.models import RewardRun, RewardScore
from modellab.rewards import scorers
from studies import access
from studies.access import Action
from studies.generation.backends import validate_backend_settings
from studies.generation.services import check_chat_model, check_model_host, model_params
from studies.models import LanguageModel, ResponseVariant, Scenario, Study
from studies.services import record_audit

logger = logging.getLogger(__name__)

#: Tries per score (first + retries) before an error marks it failed, or a judge answer that
#: never parses marks it unparsed.
MAX_ATTEMPTS = 3
#: A judge prompt longer than this is surely a paste gone wrong.
MAX_JUDGE_PROMPT_CHARS = 20_000
OPEN_STATUSES = (RewardScore.Status.PENDING, RewardScore.Status.RUNNING)
OPEN_RUNS = (RewardRun.Status.QUEUED, RewardRun.Status.RUNNING)
FINISHED_RUNS = (RewardRun.Status.DONE, RewardRun.Status.FAILED, RewardRun.Status.CANCELLED)
SCORERS = tuple(RewardRun.Scorer.values)


def prompt_sha256(judge_prompt: str) -> str:
    return hashlib.sha256(judge_prompt.encode("utf-8")).hexdigest() if judge_prompt else ""


def _check_scorer(model: LanguageModel, scorer: str, judge_prompt: str | None) -> str:
    """The judge prompt to store ("" for a reward model); ValueError says what is wrong."""
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {', '.join(SCORERS)}, not {scorer!r}")
    check_chat_model(model)
    if scorer == RewardRun.Scorer.REWARD_MODEL:
        if model.backend != LanguageModel.Backend.TRANSFORMERS:
            raise ValueError(
                f"model '{model.name}' is reached over HTTP ({model.backend}); a reward model "
                "must be a local transformers model whose path holds a Hugging Face "
                "sequence-classification reward model"
            )
        if judge_prompt:
            raise ValueError("a judge prompt is for the llm_judge scorer only")
        validate_backend_settings(model.backend, model.backend_settings)
        return ""
    check_model_host(model)
    prompt = (judge_prompt or "").strip() or scorers.DEFAULT_JUDGE_PROMPT
    if len(prompt) > MAX_JUDGE_PROMPT_CHARS:
        raise ValueError(f"the judge prompt is longer than {MAX_JUDGE_PROMPT_CHARS} characters")
    return prompt


def stimuli(study: Study) -> list[tuple[ResponseVariant, str, scorers.Messages]]:
    """Every (response, framing) a participant could see: each approved variant with its
    query alone (motivation "") and after each of its query's scenarios, as conversations."""
    variants = list(
        ResponseVariant.objects.filter(
            query__study=study, review_status=ResponseVariant.ReviewStatus.APPROVED
        )
        .select_related("query")
        .order_by("query__query_id", "response_type", "model_name", "sample", "pk")
    )
    scenarios: dict[int, list[tuple[str, str]]] = {}
    for query_id, motivation, text in (
        Scenario.objects.filter(query__study=study)
        .order_by("motivation")
        .values_list("query_id", "motivation", "text")
    ):
        scenarios.setdefault(query_id, []).append((motivation, text))
    wanted = []
    for variant in variants:
        framings = [("", None), *scenarios.get(variant.query_id, [])]
        for motivation, scenario in framings:
            messages = scorers.conversation(variant.query.text, scenario, variant.text)
            wanted.append((variant, motivation, messages))
    return wanted


@transaction.atomic
def start_reward_run(
    *,
    study: Study,
    model: LanguageModel,
    scorer: str,
    actor: AbstractBaseUser | None,
    judge_prompt: str | None = None,
    dispatch: bool = True,
) -> RewardRun:
    """Score every (query[, scenario], response) of the study with ``model`` as ``scorer``.

    The same study, model, scorer and judge prompt make the same run: starting it again adds
    what is new (responses approved since), scores again what failed, was unparsed, was
    cancelled or whose text changed, and keeps every score still valid. A run already queued
    or running is returned as it is (cancel it first to restart it). Needs EDIT on the study
    and the right to use the model
    (PermissionDenied); a bad scorer, model or prompt raises ValueError and writes nothing.
    Raises QueueUnavailable (after the commit) when the broker is down; the run is then
    stored as failed with the reason.
    """
    if actor is not None:
        if not access.can(actor, Action.EDIT, study):
            raise PermissionDenied("your role in this study does not allow scoring its responses")
        if not access.can_use_model(actor, model):
            raise PermissionDenied(f"model '{model.name}' is not shared with you")
    prompt = _check_scorer(model, scorer, judge_prompt)
    wanted = stimuli(study)
    if not wanted:
        raise ValueError(f"study '{study.slug}' has no approved responses to score")
    # One start at a time per study: two racing starts would otherwise both create the run.
    study = Study.objects.select_for_update().get(pk=study.pk)
    run, created = RewardRun.objects.select_for_update().get_or_create(
        study=study,
        model=model,
        scorer=scorer,
        prompt_sha256=prompt_sha256(prompt),
        defaults={"judge_prompt": prompt, "created_by": actor},
    )
    if not created and run.status in OPEN_RUNS:
        return run
    hashes = {(v.pk, motivation): scorers.input_sha256(m) for v, motivation, m in wanted}
    RewardScore.objects.bulk_create(
        [
            RewardScore(run=run, variant_id=variant_id, motivation=motivation, input_sha256=sha)
            for (variant_id, motivation), sha in hashes.items()
        ],
        ignore_conflicts=True,
    )
    # Scores of texts edited since, and those without a score, are taken again.
    stale = [
        pk
        for pk, variant_id, motivation, sha in run.scores.values_list(
            "pk", "variant_id", "motivation", "input_sha256"
        )
        if hashes.get((variant_id, motivation), sha) != sha
    ]
    reopen = run.scores.filter(Q(pk__in=stale) | ~Q(status=RewardScore.Status.DONE))
    reopened = reopen.update(
        status=RewardScore.Status.PENDING,
        score=None,
        attempts=0,
        error="",
        raw_answer="",
        rationale="",
        started_at=None,
        finished_at=None,
        batch=None,
    )
    run.params = {
        **model_params(model),
        "scorer": scorer,
        "max_attempts": MAX_ATTEMPTS,
        "stimuli": len(hashes),
    }
    run.error = ""
    if reopened:
        run.status = RewardRun.Status.QUEUED
        run.queued_at = timezone.now()
        run.started_at = run.finished_at = None
    else:
        run.status = RewardRun.Status.DONE
        run.finished_at = timezone.now()
    run.save()
    _store_counts(run)
    record_audit(
        study=study,
        action="reward_run_started",
        actor=actor,
        run=run.pk,
        model=model.name,
        scorer=scorer,
        to_score=reopened,
    )
    if reopened and dispatch:
        from modellab.rewards.tasks import dispatch_reward_run

        send_on_commit(
            lambda: dispatch_reward_run.delay(run.pk),
            what="reward scoring run",
            on_failure=lambda reason: fail_undispatched_run(run_id=run.pk, reason=reason),
        )
    return run


def _store_counts(run: RewardRun) -> dict[str, int]:
    counts = {s: 0 for s in RewardScore.Status.values}
    for status in run.scores.values_list("status", flat=True):
        counts[status] += 1
    run.n_total = sum(counts.values())
    run.n_done = counts[RewardScore.Status.DONE]
    run.n_failed = counts[RewardScore.Status.FAILED]
    run.n_unparsed = counts[RewardScore.Status.UNPARSED]
    run.save(update_fields=["n_total", "n_done", "n_failed", "n_unparsed"])
    return counts


def _fail_queued_run(run: RewardRun, reason: str) -> bool:
    """Fail a run no worker has started, and its open scores; False if one already has."""
    if run.status != RewardRun.Status.QUEUED:
        return False
    now = timezone.now()
    run.scores.filter(status__in=OPEN_STATUSES).update(
        status=RewardScore.Status.FAILED, error=reason[:2000], finished_at=now
    )
    run.status, run.error, run.finished_at = RewardRun.Status.FAILED, reason, now
    run.save(update_fields=["status", "error", "finished_at"])
    _store_counts(run)
    return True


@transaction.atomic
def fail_undispatched_run(*, run_id: int, reason: str) -> None:
    """The broker refused the run's dispatch: fail it and its open scores, with the reason."""
    _fail_queued_run(RewardRun.objects.select_for_update().get(pk=run_id), reason)


@transaction.atomic
def fail_unstarted_runs(*, now: datetime | None = None) -> int:
    """Fail runs no worker took within JOB_QUEUED_LIMIT_MINUTES (a lost message, no worker on
    the default queue), so their page stops waiting and a restart can take them up."""
    limit = django_settings.JOB_QUEUED_LIMIT_MINUTES
    before = (now or timezone.now()) - timedelta(minutes=limit)
    stuck = RewardRun.objects.select_for_update(skip_locked=True).filter(
        status=RewardRun.Status.QUEUED, queued_at__lt=before
    )
    reason = (
        f"not taken by a worker within {limit} minutes (is a worker running on the default "
        "queue?); start the run again to score what is missing."
    )
    failed = sum(_fail_queued_run(run, reason) for run in stuck)
    if failed:
        logger.warning("failed %d reward run(s) no worker took", failed)
    return failed


def batch_size_for(run: RewardRun) -> int:
    """Scores per batch task: a few forward passes of a reward model; for a judge, enough
    requests to keep its endpoint's concurrency busy."""
    settings = run.model.backend_settings
    if run.scorer == RewardRun.Scorer.REWARD_MODEL:
        return 4 * int(settings.get("batch_size", 8))
    if run.model.backend == LanguageModel.Backend.TRANSFORMERS:
        return int(settings.get("batch_size", 8))
    return 4 * int(settings.get("max_concurrency", 8))


@transaction.atomic
def plan_batches(run: RewardRun) -> list[tuple[str, list[int]]]:
    """Put the run's pending scores that no batch holds into batches: (batch id, score ids)."""
    ids = list(
        run.scores.select_for_update(skip_locked=True)
        .filter(status=RewardScore.Status.PENDING, batch=None)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    size = batch_size_for(run)
    batches = []
    for start in range(0, len(ids), size):
        batch, score_ids = uuid.uuid4(), ids[start : start + size]
        RewardScore.objects.filter(pk__in=score_ids).update(batch=batch)
        batches.append((str(batch), score_ids))
    return batches


def mark_run_running(*, run: RewardRun) -> None:
    RewardRun.objects.filter(pk=run.pk, status=RewardRun.Status.QUEUED).update(
        status=RewardRun.Status.RUNNING, started_at=timezone.now()
    )


def _in_batch(scores, batch: str | None):
    # None: a task sent before scores carried their batch; it claims any open score.
    return scores if batch is None else scores.filter(batch=batch)


@transaction.atomic
def claim_batch(
    *, run_id: int, score_ids: list[int], batch: str | None = None
) -> list[RewardScore]:
    """Mark a batch's open scores running (a redelivered batch claims its own again; scores
    cancelled or put in another batch since are not its own any more)."""
    claimed = list(
        _in_batch(
            RewardScore.objects.filter(pk__in=score_ids, run_id=run_id, status__in=OPEN_STATUSES),
            batch,
        )
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )
    RewardScore.objects.filter(pk__in=claimed).update(
        status=RewardScore.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now()
    )
    return list(
        RewardScore.objects.filter(pk__in=claimed)
        .select_related("variant__query", "run__model")
        .order_by("pk")
    )


def conversations_for(scores: list[RewardScore]) -> list[scorers.Messages]:
    """The conversation each score is for, built from the texts as they are now."""
    texts = {
        (q, m): t
        for q, m, t in Scenario.objects.filter(
            query_id__in={s.variant.query_id for s in scores}
        ).values_list("query_id", "motivation", "text")
    }
    return [
        scorers.conversation(
            s.variant.query.text,
            texts.get((s.variant.query_id, s.motivation)) if s.motivation else None,
            s.variant.text,
        )
        for s in scores
    ]


@dataclass(frozen=True)
class BatchResult:
    done: int
    failed: int
    unparsed: int
    retry_ids: list[int]


@transaction.atomic
def record_batch(
    *,
    scores: list[RewardScore],
    conversations: list[scorers.Messages],
    outcomes: list[scorers.ScoreOutcome],
    batch: str | None = None,
) -> BatchResult:
    """Store each outcome on its score; what may still succeed goes back to pending to retry.

    One locking read and one bulk write for the whole batch (on a GPU host every statement is
    time the GPU idles); a score no longer running in this batch (a duplicate delivery
    finished it, the run was cancelled, a restart put it in another batch) is left as it is.
    """
    now = timezone.now()
    done = failed = unparsed = 0
    retry: list[int] = []
    running = set(
        _in_batch(
            RewardScore.objects.filter(
                pk__in=[s.pk for s in scores], status=RewardScore.Status.RUNNING
            ),
            batch,
        )
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )
    rows: list[RewardScore] = []
    for score, messages, outcome in zip(scores, conversations, outcomes, strict=True):
        if score.pk not in running:
            continue
        row = RewardScore(
            pk=score.pk,
            input_sha256=scorers.input_sha256(messages),
            raw_answer=outcome.raw,
            score=None,
            rationale="",
            error=(outcome.error or "")[:2000],
            finished_at=now,
        )
        last_try = score.attempts >= MAX_ATTEMPTS
        if outcome.ok:
            done += 1
            row.status, row.score, row.rationale = (
                RewardScore.Status.DONE,
                outcome.score,
                outcome.rationale,
            )
        elif (outcome.unparsed or outcome.retryable) and not last_try:
            retry.append(score.pk)
            row.status, row.finished_at = RewardScore.Status.PENDING, None
        elif outcome.unparsed:
            unparsed += 1
            row.status = RewardScore.Status.UNPARSED
            row.error = f"unparsed after {score.attempts} tries: {outcome.error}"[:2000]
        else:
            failed += 1
            row.status = RewardScore.Status.FAILED
        rows.append(row)
    RewardScore.objects.bulk_update(
        rows,
        [
            "status",
            "score",
            "raw_answer",
            "rationale",
            "error",
            "finished_at",
            "input_sha256",
        ],
    )
    return BatchResult(done, failed, unparsed, retry)


@transaction.atomic
def fail_scores(*, score_ids: list[int], error: str, batch: str | None = None) -> None:
    """Give up on scores after the task's own retries ran out (e.g. the model never loaded)."""
    _in_batch(RewardScore.objects.filter(pk__in=score_ids, status__in=OPEN_STATUSES), batch).update(
        status=RewardScore.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


@transaction.atomic
def finish_run_if_complete(*, run_id: int) -> RewardRun:
    """Close the run once no score is open: failed if any score failed, else done (unparsed
    judge answers are counted and named in the run's message, not hidden)."""
    run = RewardRun.objects.select_for_update().get(pk=run_id)
    if run.status not in OPEN_RUNS or run.scores.filter(status__in=OPEN_STATUSES).exists():
        return run
    _store_counts(run)
    problems = []
    if run.n_failed:
        problems.append(f"{run.n_failed} score(s) failed; see each one's error")
    if run.n_unparsed:
        problems.append(f"{run.n_unparsed} judge answer(s) could not be parsed (kept as unparsed)")
    run.status = RewardRun.Status.FAILED if run.n_failed else RewardRun.Status.DONE
    run.error = "; ".join(problems)
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    return run


@transaction.atomic
def cancel_run(*, run: RewardRun, actor: AbstractBaseUser | None) -> RewardRun:
    """Stop a run (queued, running, or stuck because its messages were lost): the scores not
    taken yet are cancelled, those already stored are kept. Batches already queued skip the
    cancelled scores; starting the same scorer again scores only what is missing. Needs EDIT
    on the study, as starting does (PermissionDenied); a finished run is returned as it is."""
    if actor is not None and not access.can(actor, Action.EDIT, run.study):
        raise PermissionDenied("your role in this study does not allow cancelling its runs")
    run = RewardRun.objects.select_for_update().select_related("study", "model").get(pk=run.pk)
    if run.status not in OPEN_RUNS:
        return run
    now = timezone.now()
    run.scores.filter(status__in=OPEN_STATUSES).update(
        status=RewardScore.Status.CANCELLED, finished_at=now
    )
    counts = _store_counts(run)
    cancelled = counts[RewardScore.Status.CANCELLED]
    run.status = RewardRun.Status.CANCELLED
    run.error = (
        f"cancelled; {cancelled} score(s) were not taken. Start the same scorer again to "
        "score what is missing."
    )
    run.finished_at = now
    run.save(update_fields=["status", "error", "finished_at"])
    record_audit(
        study=run.study, action="reward_run_cancelled", actor=actor, run=run.pk, cancelled=cancelled
    )
    return run


def run_is_cancelled(run_id: int) -> bool:
    return RewardRun.objects.filter(pk=run_id, status=RewardRun.Status.CANCELLED).exists()
