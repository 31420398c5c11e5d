"""The life of a material job that both generators share: dispatch, start, budget, the sweep."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.dispatch import send_on_commit
from modellab.models.material import JobStatus, MaterialJob, RoundStatus
from studies import access
from studies.generation.services import check_chat_model, check_model_host
from studies.models import LanguageModel

logger = logging.getLogger(__name__)

JobModel = type[MaterialJob]


def dispatch_on_commit(
    job_model: JobModel, job_id: int, send: Callable[[], object], *, what: str
) -> None:
    """Publish the job's first (or next) task once the transaction commits; a broker that
    cannot be reached fails the job at once, saying why, instead of leaving it queued."""
    send_on_commit(
        send,
        what=what,
        on_failure=lambda reason: fail_undispatched_job(job_model, job_id=job_id, reason=reason),
    )


@transaction.atomic
def fail_undispatched_job(job_model: JobModel, *, job_id: int, reason: str) -> None:
    """Fail a job still queued (no worker took it), with its rounds not finished; a job a
    worker has started is left to the worker."""
    job = job_model.objects.select_for_update().get(pk=job_id)
    if job.status != JobStatus.QUEUED:
        return
    now = timezone.now()
    job.round_set.exclude(status__in=(RoundStatus.DONE, RoundStatus.CANCELLED)).update(
        status=RoundStatus.FAILED, error=reason[:2000], finished_at=now
    )
    job.status, job.error, job.finished_at = JobStatus.FAILED, reason, now
    job.save(update_fields=["status", "error", "finished_at"])


@transaction.atomic
def mark_job_running(job_model: JobModel, *, job_id: int) -> None:
    """A queued job is running from now (a job already past queued keeps its status)."""
    job_model.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )


def count_calls(job_model: JobModel, *, job_id: int, calls: int) -> None:
    """Add ``calls`` to the job's calls used with ``F()``; the caller holds the job's row lock
    and has checked that the budget covers them."""
    job_model.objects.filter(pk=job_id).update(calls_used=F("calls_used") + calls)


@transaction.atomic
def reserve_calls(job_model: JobModel, *, job_id: int, calls: int) -> bool:
    """Count ``calls`` against the job's budget if it covers them all (the job row locked,
    ``F()`` on the count); False, counting nothing, if it does not."""
    job = job_model.objects.select_for_update().only("budget", "calls_used").get(pk=job_id)
    if job.calls_used + calls > job.budget:
        return False
    count_calls(job_model, job_id=job_id, calls=calls)
    return True


def check_model(
    actor: AbstractBaseUser,
    model: LanguageModel,
    field: str,
    problems: dict[str, str],
    *,
    kind: str = LanguageModel.Kind.CHAT,
) -> None:
    """Say in ``problems[field]`` why ``actor`` cannot have the job use ``model`` as a model of
    ``kind`` (not shared, its host not allowed, the other kind); nothing when it can."""
    if not access.can_use_model(actor, model):
        problems[field] = f"model '{model.name}' is not shared with you"
        return
    try:
        check_model_host(model)
        if kind == LanguageModel.Kind.CHAT:
            check_chat_model(model)
        elif model.kind != LanguageModel.Kind.EMBEDDING:
            raise ValueError(f"'{model.name}' is a chat model; choose an embedding model")
    except ValueError as exc:
        problems[field] = str(exc)


def reopen_stopped_rounds(job: MaterialJob) -> list:
    """Open the job's cancelled or failed rounds again where they stopped: a round with stored
    candidates goes back to checking them, one without to asking the generator. The caller
    holds the job's row lock; the rounds reopened are returned."""
    reopened = []
    for round_ in job.round_set.filter(status__in=(RoundStatus.CANCELLED, RoundStatus.FAILED)):
        stored = job.candidates.filter(round=round_).exists()
        round_.status = RoundStatus.CHECKING if stored else RoundStatus.GENERATING
        round_.error, round_.finished_at = "", None
        round_.save(update_fields=["status", "error", "finished_at"])
        reopened.append(round_)
    return reopened


def check_owner(job: MaterialJob, actor: AbstractBaseUser) -> None:
    """Only the researcher who started the job (or a superuser) may change it."""
    if not (actor.is_superuser or job.owner_id == actor.pk):
        raise PermissionDenied("only the researcher who started the job may change it")


@transaction.atomic
def fail_unstarted_jobs(job_model: JobModel, *, what: str, advice: str, now=None) -> int:
    """Fail the jobs no worker took within JOB_QUEUED_LIMIT_MINUTES, so their page stops
    waiting and says why (``advice`` ends the reason); a beat task calls this."""
    limit = django_settings.JOB_QUEUED_LIMIT_MINUTES
    before = (now or timezone.now()) - timedelta(minutes=limit)
    reason = (
        f"not taken by a worker within {limit} minutes (is a worker running on the default "
        f"queue?); {advice}"
    )
    stuck = job_model.objects.select_for_update(skip_locked=True).filter(
        status=JobStatus.QUEUED, created_at__lt=before, started_at__isnull=True
    )
    count = 0
    for job in stuck:
        fail_undispatched_job(job_model, job_id=job.pk, reason=reason)
        count += 1
    if count:
        logger.warning("failed %d %s(s) no worker took", count, what)
    return count
