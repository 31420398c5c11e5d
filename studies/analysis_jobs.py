"""Running the analysis for a study: queue it, compute it on a worker, keep every result."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from annotation import selectors as annotation_selectors
from config.dispatch import QueueUnavailable, send_on_commit
from studies import selectors
from studies.domain import DEFAULT_INCLUSION
from studies.exports import INCLUSION_CHOICES
from studies.models import AnalysisResult, Study

logger = logging.getLogger(__name__)

OPEN = (AnalysisResult.Status.QUEUED, AnalysisResult.Status.RUNNING)


def report_options(study: Study, inclusion: str):
    """The analysis settings a study's spec and questions imply (the CLI's --spec reads the
    same from a spec file: studies.analysis.spec_options)."""
    from studies.analysis.spec_options import options_from_spec

    return options_from_spec(selectors.study_spec(study), inclusion=inclusion)


@transaction.atomic
def request_analysis(
    *, study: Study, inclusion: str = DEFAULT_INCLUSION, actor: AbstractBaseUser | None = None
) -> AnalysisResult:
    """Queue a computation, unless one for the same study and inclusion is already open.

    Raises QueueUnavailable (after the commit) when the broker is down; the result is then
    stored as failed with the reason, so the study is never left behind a queued row.
    """
    if inclusion not in INCLUSION_CHOICES:
        raise ValueError(f"inclusion must be one of {', '.join(INCLUSION_CHOICES)}")
    Study.objects.select_for_update().get(pk=study.pk)  # one open request at a time
    open_result = AnalysisResult.objects.filter(
        study=study, inclusion=inclusion, status__in=OPEN
    ).first()
    if open_result is not None:
        return open_result
    result = AnalysisResult.objects.create(study=study, inclusion=inclusion, requested_by=actor)
    from studies.tasks import compute_analysis

    send_on_commit(
        lambda: compute_analysis.delay(result.pk),
        what="computation",
        on_failure=lambda reason: _fail_open(
            AnalysisResult.objects.filter(pk=result.pk), reason=reason
        ),
    )
    return result


def _fail_open(results, *, reason: str, now: datetime | None = None) -> int:
    """Mark the still-open results among ``results`` failed; a worker then skips them."""
    return results.filter(status__in=OPEN).update(
        status=AnalysisResult.Status.FAILED, error=reason, finished_at=now or timezone.now()
    )


def fail_stuck_results(now: datetime | None = None) -> int:
    """Fail results no worker took within JOB_QUEUED_LIMIT_MINUTES, or that have been
    running past ANALYSIS_RUNNING_LIMIT_MINUTES (their worker died and nothing redelivered
    the task, e.g. a broker restarted without persistence), so they can be requested again."""
    now = now or timezone.now()
    queued_limit = settings.JOB_QUEUED_LIMIT_MINUTES
    running_limit = settings.ANALYSIS_RUNNING_LIMIT_MINUTES
    results = AnalysisResult.objects
    failed = _fail_open(
        results.filter(
            status=AnalysisResult.Status.QUEUED,
            requested_at__lt=now - timedelta(minutes=queued_limit),
        ),
        reason=f"not taken by a worker within {queued_limit} minutes (is a worker running on "
        "the default queue?); nothing was computed. Recompute to try again.",
        now=now,
    )
    failed += _fail_open(
        results.filter(
            status=AnalysisResult.Status.RUNNING,
            started_at__lt=now - timedelta(minutes=running_limit),
        ),
        reason=f"still running after {running_limit} minutes: its worker stopped without "
        "finishing. Recompute to try again.",
        now=now,
    )
    if failed:
        logger.warning("failed %d analysis result(s) no worker finished", failed)
    return failed


def ratings_frame(study: Study) -> pd.DataFrame:
    """All of the study's ratings (every status: inclusion is applied by the analysis itself)."""
    rows = list(annotation_selectors.ratings_long_format(study))
    return pd.DataFrame(rows, columns=annotation_selectors.long_format_columns(study))


def compute(result_id: int) -> AnalysisResult:
    """Compute one queued result; a failure is stored with its message, never raised."""
    from studies.analysis import AnalysisInputError, build_report

    updated = AnalysisResult.objects.filter(pk=result_id, status__in=OPEN).update(
        status=AnalysisResult.Status.RUNNING, started_at=timezone.now()
    )
    result = AnalysisResult.objects.select_related("study").get(pk=result_id)
    if not updated:
        return result
    started = time.perf_counter()
    try:
        frame = ratings_frame(result.study)
        report = build_report(frame, report_options(result.study, result.inclusion))
    except (AnalysisInputError, ValueError) as exc:
        result.status = AnalysisResult.Status.FAILED
        result.error = str(exc)
    else:
        result.status = AnalysisResult.Status.DONE
        result.report = report
        result.inputs_hash = report["meta"]["inputs_hash"]
        result.code_version = report["meta"]["code_version"]
        result.n_ratings = report["meta"]["n_ratings"]
    result.finished_at = timezone.now()
    result.duration_s = round(time.perf_counter() - started, 3)
    result.save()
    if result.status == AnalysisResult.Status.DONE:
        # Built here, on the worker, so that the first view of the results is not the one
        # that waits for its figures. The result is stored already: a failure here only
        # leaves the page to build them itself.
        try:
            page_parts(result)
        except Exception:  # noqa: BLE001
            logger.exception("results page parts of analysis %s not built", result.pk)
    return result


def _page_key(result: AnalysisResult) -> str:
    finished = result.finished_at.timestamp() if result.finished_at else 0
    return f"{result.pk}:{finished}:{result.inputs_hash}"


def page_parts(result: AnalysisResult) -> dict:
    """What the results page shows of a stored result (html_report.results_page_parts),
    from the shared cache, built and stored there on a miss. A result never changes once
    done, so its parts are valid for as long as they are kept; without Redis they are built
    for this request alone."""
    from django.core.cache import caches

    from studies.analysis.html_report import results_page_parts

    cache = caches[settings.RESULTS_PAGE_CACHE]
    key = _page_key(result)
    try:
        parts = cache.get(key)
    except Exception:  # noqa: BLE001 - a cache that is down costs time, never the page
        logger.warning("results page cache unavailable", exc_info=True)
        return results_page_parts(result.report)
    if parts is None:
        parts = results_page_parts(result.report)
        try:
            cache.set(key, parts)
        except Exception:  # noqa: BLE001
            logger.warning("results page cache unavailable", exc_info=True)
    return parts


def latest_result(study: Study, inclusion: str) -> AnalysisResult | None:
    return (
        AnalysisResult.objects.filter(study=study, inclusion=inclusion, status="done")
        .order_by("-finished_at")
        .first()
    )


def completed_since(study: Study, since: datetime | None) -> int:
    """Participants who completed the study after ``since`` (all of them when None); withdrawn
    ones never count. One indexed COUNT: the results page runs it on every view."""
    participants = annotation_selectors.counted_participants(study, "completed")
    if since is not None:
        participants = participants.filter(completed_at__gt=since)
    return participants.count()


def is_stale(study: Study, result: AnalysisResult | None) -> bool:
    """True when participants completed after the result was requested (any, without one).

    Requested, not finished: the worker reads the ratings after the request, so a completion
    in between may already be in; counting it again costs one more computation, never a
    missed participant.
    """
    return completed_since(study, result.requested_at if result is not None else None) > 0


def freshness(study: Study, result: AnalysisResult | None) -> dict:
    """How fresh the shown analysis is: its participants, when it was computed, and how many
    participants completed since it was requested (read now, from the database)."""
    meta = (result.report or {}).get("meta") or {} if result is not None else {}
    return {
        "n_participants": meta.get("n_participants"),
        "computed_at": (result.finished_at or result.requested_at) if result is not None else None,
        "completed_since": completed_since(
            study, result.requested_at if result is not None else None
        ),
    }


# Studies whose participants can still complete: a paused study lets those already in finish.
REFRESHED_STATUSES = (Study.Status.LIVE, Study.Status.PAUSED)


def refresh_live_studies(now=None) -> int:
    """Recompute studies where participants completed since their latest result was requested.

    Runs in the beat sweep (CELERY_BEAT_SCHEDULE, every 30 s), never in a participant's
    request, so a completion is in the results within a minute: unless a computation is
    already open, or one was requested less than ANALYSIS_REFRESH_MINUTES ago (0 by default;
    raise it to spare a worker on a study with completions every minute). Stuck results are
    failed first, so a lost task never keeps a study from refreshing.
    """
    now = now or timezone.now()
    fail_stuck_results(now)
    every = timedelta(minutes=settings.ANALYSIS_REFRESH_MINUTES)
    queued = 0
    for study in Study.objects.filter(status__in=REFRESHED_STATUSES):
        latest = (
            AnalysisResult.objects.filter(study=study, inclusion=DEFAULT_INCLUSION)
            .order_by("-requested_at")
            .first()
        )
        if latest is not None and (latest.status in OPEN or latest.requested_at > now - every):
            continue
        if is_stale(study, latest):
            try:
                request_analysis(study=study)
            except QueueUnavailable:
                # The broker is down for every study alike; the next beat tick tries again.
                break
            queued += 1
    return queued
