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
