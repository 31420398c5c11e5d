"""Jobs no worker took within JOB_QUEUED_LIMIT_MINUTES are failed by the beat sweep, so a
study is never stuck behind a queued row."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from studies.generation import services as generation_services
from studies.models import AnalysisResult, GenerationJob
from studies.tasks import fail_unstarted_generation_jobs, refresh_live_analyses
from tests.analysis.test_platform_simulation import simulate_participants

pytestmark = pytest.mark.django_db


def minutes_ago(minutes: int):
    return timezone.now() - timedelta(minutes=minutes)


def test_a_lost_analysis_is_failed_and_the_live_study_recomputes(
    make_study, django_capture_on_commit_callbacks
):
    study = make_study(target_participants=4)
    simulate_participants(study, 2, seed=1)
    limit = settings.JOB_QUEUED_LIMIT_MINUTES
    lost = AnalysisResult.objects.create(study=study, inclusion="completed")
    AnalysisResult.objects.filter(pk=lost.pk).update(requested_at=minutes_ago(limit + 1))
    with django_capture_on_commit_callbacks(execute=False) as published:
        assert refresh_live_analyses() == 1
    lost.refresh_from_db()
    assert lost.status == "failed"
    assert f"not taken by a worker within {limit} minutes" in lost.error
    assert AnalysisResult.objects.filter(study=study, status="queued").count() == 1
    assert len(published) == 1


def test_a_recent_queued_analysis_is_left_alone(make_study, django_capture_on_commit_callbacks):
    study = make_study(target_participants=4)
    simulate_participants(study, 1, seed=1)
    waiting = AnalysisResult.objects.create(study=study, inclusion="all")
    AnalysisResult.objects.filter(pk=waiting.pk).update(requested_at=minutes_ago(1))
    with django_capture_on_commit_callbacks(execute=False):
        refresh_live_analyses()
    waiting.refresh_from_db()
    assert waiting.status == "queued"


def test_an_analysis_whose_worker_vanished_is_failed(make_study):
    study = make_study()
    running = AnalysisResult.objects.create(study=study, status="running")
    AnalysisResult.objects.filter(pk=running.pk).update(
        started_at=minutes_ago(settings.ANALYSIS_RUNNING_LIMIT_MINUTES + 1)
    )
    refresh_live_analyses()
    running.refresh_from_db()
    assert running.status == "failed" and "worker" in running.error


def test_an_unstarted_generation_job_is_failed_and_the_study_goes_to_review(make_study):
    study = make_study(launch=False)
    model = generation_services.register_model(
        name="loopback",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:8209/v1", "model": "m"},
    )
    stuck = generation_services.start_generation_job(study=study, model=model, dispatch=False)
    GenerationJob.objects.filter(pk=stuck.pk).update(
        created_at=minutes_ago(settings.JOB_QUEUED_LIMIT_MINUTES + 1)
    )
    assert fail_unstarted_generation_jobs() == 1
    stuck.refresh_from_db()
    assert stuck.status == "failed" and "not taken by a worker" in stuck.error
    assert not stuck.items.filter(status__in=("pending", "running")).exists()
    study.refresh_from_db()
    assert study.status == "review"
    # A rerun takes the failed texts up again.
    texts = stuck.items.count()
    rerun = generation_services.start_generation_job(study=study, model=model, dispatch=False)
    assert rerun.items.filter(status="pending").count() == texts > 0


def test_a_recent_generation_job_is_left_alone(make_study):
    study = make_study(launch=False)
    model = generation_services.register_model(
        name="loopback",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:8209/v1", "model": "m"},
    )
    job = generation_services.start_generation_job(study=study, model=model, dispatch=False)
    assert fail_unstarted_generation_jobs() == 0
    job.refresh_from_db()
    assert job.status == "queued"


def test_beat_runs_both_sweeps():
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert {
        "studies.tasks.refresh_live_analyses",
        "studies.tasks.fail_unstarted_generation_jobs",
    } <= tasks


def test_every_scheduled_task_exists_and_stuck_false_refusal_runs_are_swept():
    from config.celery import app

    app.loader.import_default_modules()
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "modellab.false_refusal.tasks.fail_unstarted_false_refusal_runs" in tasks
    assert tasks <= set(app.tasks), tasks - set(app.tasks)
