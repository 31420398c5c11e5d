"""With the broker down, starting a job fails the request with a clear message and no row
stays queued; once the broker is back the same study computes again."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from config.celery import app
from studies.generation import services as generation_services
from studies.models import AnalysisResult, GenerationItem, GenerationJob, StudyMembership
from tests.ops.conftest import CLOSED_BROKER, broker_at
from tests.workers import purge_queues

# The publish happens in transaction.on_commit, so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

QUEUE_DOWN = "could not reach the job queue"


@pytest.fixture(autouse=True)
def empty_queues():
    purge_queues("default")
    yield
    purge_queues("default")


def test_recompute_with_broker_down_says_so_and_leaves_nothing_queued(researcher_client):
    study, _owner, client = researcher_client
    results_page = f"/studies/{study.slug}/results/?include=completed"
    with broker_at(CLOSED_BROKER):
        response = client.post(
            f"/studies/{study.slug}/results/recompute/",
            {"include": "completed"},
            HTTP_REFERER=f"http://testserver{results_page}",
        )
    assert response.status_code == 303
    assert response["Location"] == results_page
    page = client.get(response["Location"]).content.decode()
    assert QUEUE_DOWN in page  # the message, and the failed row the page shows
    assert not AnalysisResult.objects.filter(study=study, status="queued").exists()
    failed = AnalysisResult.objects.get(study=study)
    assert failed.status == "failed" and QUEUE_DOWN in failed.error
    # The broker is back: the study is not stuck, a new computation is queued.
    client.post(f"/studies/{study.slug}/results/recompute/", {"include": "completed"})
    assert AnalysisResult.objects.filter(study=study, status="queued").count() == 1


def test_recompute_api_with_broker_down_answers_503(researcher_client):
    study, _owner, client = researcher_client
    with broker_at(CLOSED_BROKER):
        response = client.post(
            f"/api/studies/{study.slug}/analysis/",
            {"inclusion": "all"},
            content_type="application/json",
        )
    assert response.status_code == 503
    assert QUEUE_DOWN in response.json()["detail"]
    assert response["Retry-After"] == "60"
    assert not AnalysisResult.objects.filter(study=study, status="queued").exists()


@pytest.fixture
def draft_with_model(make_study):
    owner = get_user_model().objects.create_user("ops-writer", password="x")
    draft = make_study(launch=False)
    StudyMembership.objects.create(study=draft, user=owner, role="owner")
    # A browser gets the error page, not the exception the test client would re-raise.
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    generation_services.register_model(
        name="loopback",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:8209/v1", "model": "m"},
        actor=owner,
    )
    return draft, client


def test_generation_with_broker_down_says_so_and_changes_the_study_back(draft_with_model):
    draft, client = draft_with_model
    with broker_at(CLOSED_BROKER):
        response = client.post(
            f"/studies/{draft.slug}/generate/",
            {"model": "loopback", "kind": "strategy", "mode": "per_type", "samples": "1"},
            HTTP_REFERER=f"http://testserver/studies/{draft.slug}/",
        )
    assert response.status_code == 303
    page = client.get(response["Location"]).content.decode()
    assert QUEUE_DOWN in page
    job = GenerationJob.objects.get(study=draft)
    assert job.status == "failed" and QUEUE_DOWN in job.error
    assert not job.items.filter(status__in=("pending", "running")).exists()
    draft.refresh_from_db()
    assert draft.status == "draft"  # not left "generating" with nothing to generate


def test_generation_api_with_broker_down_answers_503(draft_with_model):
    draft, client = draft_with_model
    with broker_at(CLOSED_BROKER):
        response = client.post(
            f"/api/studies/{draft.slug}/generation-jobs/",
            {"model": "loopback", "kind": "strategy"},
            content_type="application/json",
        )
    assert response.status_code == 503
    assert QUEUE_DOWN in response.json()["detail"]
    assert not GenerationItem.objects.filter(status="pending").exists()
    assert GenerationJob.objects.get(study=draft).status == "failed"


def test_publishing_gives_up_quickly_when_the_broker_is_down():
    # Celery's default retries a publish three times; one retry is enough to ride out a blip.
    assert app.conf.task_publish_retry_policy["max_retries"] == 1
    assert app.conf.broker_connection_timeout <= 5
