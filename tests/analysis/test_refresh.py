"""Live studies are recomputed after new ratings, at most every ANALYSIS_REFRESH_MINUTES."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from studies import analysis_jobs
from studies.models import AnalysisResult
from tests.analysis.test_platform_simulation import simulate_participants

pytestmark = pytest.mark.django_db


def test_refresh_queues_only_when_due_and_stale(
    make_study, settings, django_capture_on_commit_callbacks
):
    settings.ANALYSIS_REFRESH_MINUTES = 10
    study = make_study(target_participants=4)
    with django_capture_on_commit_callbacks(execute=False):
        assert analysis_jobs.refresh_live_studies() == 0  # no ratings yet: nothing to compute
        simulate_participants(study, 2, seed=1)
        assert analysis_jobs.refresh_live_studies() == 1
        assert analysis_jobs.refresh_live_studies() == 0  # one is already queued
        result = AnalysisResult.objects.get(study=study)
        analysis_jobs.compute(result.pk)
        assert analysis_jobs.refresh_live_studies() == 0  # fresh, and nothing new since
        simulate_participants(study, 1, seed=2, first=2)  # a new participant's ratings
        AnalysisResult.objects.filter(pk=result.pk).update(
            requested_at=timezone.now() - timedelta(minutes=11)
        )
        assert analysis_jobs.refresh_live_studies() == 1
    assert AnalysisResult.objects.filter(study=study).count() == 2


def test_a_completion_is_queued_at_the_next_sweep_by_default(
    make_study, django_capture_on_commit_callbacks
):
    """Default settings: the sweep (every 30 s) queues a study as soon as someone completed
    since its latest result was requested; the page once showed 1 participant while 3 had."""
    study = make_study(target_participants=4)
    with django_capture_on_commit_callbacks(execute=False):
        simulate_participants(study, 1, seed=1)
        assert analysis_jobs.refresh_live_studies() == 1
        result = AnalysisResult.objects.get(study=study)
        analysis_jobs.compute(result.pk)
        assert analysis_jobs.freshness(study, result)["completed_since"] == 0
        assert analysis_jobs.refresh_live_studies() == 0  # nothing new
        simulate_participants(study, 2, seed=1, first=1)
        assert analysis_jobs.freshness(study, result)["completed_since"] == 2
        assert analysis_jobs.refresh_live_studies() == 1  # at once, not minutes later


def test_the_beat_schedule_sweeps_at_least_every_half_minute(settings):
    entry = next(
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "studies.tasks.refresh_live_analyses"
    )
    assert entry["schedule"] <= 30


@pytest.mark.long_running
@pytest.mark.django_db(transaction=True)
def test_the_sweep_on_a_real_worker_brings_new_completions_into_the_results(make_study, tmp_path):
    """The beat task, sent through Redis as beat sends it, runs on a real Celery worker: it
    queues the computation, the worker computes it, and completions after it are in the next."""
    from studies import tasks
    from tests.workers import CeleryWorker, purge_queues, wait_for_progress

    purge_queues("default")
    study = make_study(target_participants=4)
    simulate_participants(study, 1, seed=1)
    log = tmp_path / "worker.log"
    worker = CeleryWorker("default", log_path=log).start()
    done = AnalysisResult.objects.filter(study=study, status="done")

    def moved() -> tuple[int, int]:
        return AnalysisResult.objects.filter(study=study).count(), (
            log.stat().st_size if log.exists() else 0
        )

    def participants_in_latest() -> int:
        latest = analysis_jobs.latest_result(study, "included")
        return latest.report["meta"]["n_participants"] if latest else -1

    try:
        tasks.refresh_live_analyses.delay()
        wait_for_progress(lambda: done.count() == 1, progress=moved, worker=worker, log=log)
        assert participants_in_latest() == 1
        simulate_participants(study, 2, seed=1, first=1)
        first = analysis_jobs.latest_result(study, "included")
        assert analysis_jobs.freshness(study, first)["completed_since"] == 2
        tasks.refresh_live_analyses.delay()
        wait_for_progress(lambda: done.count() == 2, progress=moved, worker=worker, log=log)
    finally:
        worker.stop()
    assert participants_in_latest() == 3
    latest = analysis_jobs.latest_result(study, "included")
    assert analysis_jobs.freshness(study, latest)["completed_since"] == 0
