"""Cancelling a false-refusal run: batches already queued store nothing, resuming asks only for
what is missing and labels only what is unlabelled, and only the run's owner may do either."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from modellab.false_refusal import selectors, services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING
from modellab.false_refusal.tasks import (
    classify_false_refusal_batch,
    generate_false_refusal_batch,
)
from modellab.models import FalseRefusalItem, FalseRefusalRun
from studies.generation import services as generation_services
from studies.generation.backends import ChatOutcome
from tests.modellab.false_refusal.test_runs import COMPLIANCE, chat

pytestmark = pytest.mark.django_db


@pytest.fixture
def phtest_set(ada, phtest_sample):
    return services.import_prompt_set(
        name="phtest-sample",
        data=phtest_sample,
        filename="sample.csv",
        mapping=PHTEST_MAPPING,
        actor=ada,
    )


@pytest.fixture
def helpful(ada, chat_server):
    chat_server.handler = lambda request: chat(COMPLIANCE)
    # max_concurrency 1: batches of 4 prompts, so the 12-prompt sample makes three batches.
    return generation_services.register_model(
        name="helpful",
        backend="openai",
        backend_settings={
            "base_url": chat_server.url,
            "model": "helpful-served",
            "max_concurrency": 1,
            "max_retries": 0,
        },
        max_tokens=50,
        actor=ada,
    )


def queued_batches(prompt_set, model, actor) -> tuple[FalseRefusalRun, list]:
    """A started run whose dispatch sent its batches, none of them taken by a worker yet."""
    run = services.start_false_refusal_run(
        prompt_set=prompt_set,
        models=[model],
        classifier="string_match",
        actor=actor,
        dispatch=False,
    )
    services.mark_run_running(run_id=run.pk)
    batches = services.plan_generation(run)
    assert len(batches) == 3
    return run, batches


def statuses(run: FalseRefusalRun) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in run.items.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_cancel_stops_a_queued_run_and_its_batches_store_nothing(
    ada, phtest_set, helpful, chat_server, eager_tasks
):
    run, batches = queued_batches(phtest_set, helpful, ada)

    cancelled = services.cancel_run(run=run, actor=ada)

    assert cancelled.status == FalseRefusalRun.Status.CANCELLED and cancelled.finished_at
    assert statuses(run) == {"cancelled": 12}
    assert "12 prompt(s) were not answered" in cancelled.error
    progress = selectors.run_progress(cancelled)
    assert progress["finished"] and progress["cancelled"] == 12 and progress["labelled"] == 0
    for _model, batch, item_ids in batches:
        assert generate_false_refusal_batch.apply(args=[run.pk, item_ids, batch]).get() == {
            "skipped": "cancelled"
        }
    assert chat_server.chat_requests == []
    assert statuses(run) == {"cancelled": 12}
    # Cancelling a finished run changes nothing.
    assert services.cancel_run(run=run, actor=ada).error == cancelled.error


def test_a_batch_working_when_the_run_is_cancelled_stores_nothing(ada, phtest_set, helpful):
    run, batches = queued_batches(phtest_set, helpful, ada)
    _model, batch, item_ids = batches[0]
    # A worker took the batch and waits for the model while the run is cancelled.
    items = services.claim_generation(run_id=run.pk, item_ids=item_ids, batch=batch)
    assert len(items) == 4
    services.cancel_run(run=run, actor=ada)
    result = services.record_generation(
        items=items,
        requests=[services.chat_request(i) for i in items],
        outcomes=[ChatOutcome(text=COMPLIANCE) for _ in items],
        batch=batch,
    )
    assert result.generated == [] and result.retry_ids == []
    assert not run.items.exclude(response="").exists()
    assert statuses(run) == {"cancelled": 12}


def test_resume_after_a_cancel_does_only_what_is_missing(
    ada, phtest_set, helpful, chat_server, eager_tasks
):
    run, batches = queued_batches(phtest_set, helpful, ada)
    (_m, first, first_ids), (_m, second, second_ids), (_m, third, third_ids) = batches
    # The first batch is answered and labelled; the second answered but not labelled yet.
    generate_false_refusal_batch.apply(args=[run.pk, first_ids, first])
    items = services.claim_generation(run_id=run.pk, item_ids=second_ids, batch=second)
    services.record_generation(
        items=items,
        requests=[services.chat_request(i) for i in items],
        outcomes=[ChatOutcome(text=COMPLIANCE) for _ in items],
        batch=second,
    )
    assert len(chat_server.chat_requests) == 4
    assert statuses(run) == {"done": 4, "generated": 4, "pending": 4}

    cancelled = services.cancel_run(run=run, actor=ada)
    assert statuses(run) == {"done": 4, "generated": 4, "cancelled": 4}
    assert "4 prompt(s) were not answered, 4 answer(s) were not labelled" in cancelled.error
    # The second batch's labels, delivered late, are not stored.
    assert classify_false_refusal_batch.apply(args=[run.pk, second_ids, second]).get() == {
        "skipped": "cancelled"
    }
    assert statuses(run)["generated"] == 4

    services.retry_failed(run=run, actor=ada)
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.QUEUED and run.error == ""
    # Batches of the cancelled start, delivered after the resume, do nothing.
    assert generate_false_refusal_batch.apply(args=[run.pk, third_ids, third]).get() == {
        "skipped": "nothing open"
    }
    assert classify_false_refusal_batch.apply(args=[run.pk, second_ids, second]).get() == {
        "skipped": "nothing to label"
    }
    assert len(chat_server.chat_requests) == 4
    from modellab.false_refusal.tasks import dispatch_false_refusal_run

    dispatch_false_refusal_run.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.DONE and run.error == ""
    assert statuses(run) == {"done": 12}
    # Only the four prompts never answered were asked, once each.
    assert len(chat_server.chat_requests) == 8
    assert set(run.items.values_list("label", "attempts")) == {("full_compliance", 1)}


def test_only_the_owner_may_cancel_or_resume(client, ada, bob, phtest_set, helpful):
    run, _ = queued_batches(phtest_set, helpful, ada)
    page = reverse("modellab:false-refusal-run", args=[run.pk])
    cancel = reverse("modellab:false-refusal-cancel", args=[run.pk])
    urls = [
        cancel,
        reverse("modellab:false-refusal-retry", args=[run.pk]),
        reverse("modellab:api-false-refusal-run-cancel", args=[run.pk]),
        reverse("modellab:api-false-refusal-run-resume", args=[run.pk]),
    ]
    with pytest.raises(PermissionDenied):
        services.cancel_run(run=run, actor=bob)
    client.force_login(bob)
    for url in urls:
        assert client.post(url).status_code == 404, url
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.RUNNING and statuses(run) == {"pending": 12}

    client.force_login(ada)
    html = client.get(page).content.decode()
    assert "Cancel the run" in html and f'action="{cancel}"' in html
    response = client.post(cancel)
    assert response.status_code == 302 and response["Location"] == page
    html = client.get(page).content.decode()
    assert "Cancel the run" not in html and "Resume the run" in html
    assert "12 not asked (cancelled)" in html


def test_api_cancel_and_resume(
    client, ada, phtest_set, helpful, eager_tasks, django_capture_on_commit_callbacks
):
    # Started, but its message never reached a worker: it stays queued until cancelled.
    run = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[helpful],
        classifier="string_match",
        actor=ada,
        dispatch=False,
    )
    client.force_login(ada)
    url = reverse("modellab:api-false-refusal-run-cancel", args=[run.pk])
    response = client.post(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == run.pk and body["status"] == "cancelled"
    assert body["progress"]["finished"] and body["progress"]["cancelled"] == 12
    assert client.post(url).json()["status"] == "cancelled"
    resume = reverse("modellab:api-false-refusal-run-resume", args=[run.pk])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(resume)
    assert response.status_code == 202, response.content
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.DONE and statuses(run) == {"done": 12}
    # A finished run is not resumed again.
    again = client.post(resume)
    assert again.status_code == 400 and "cancelled" in again.json()["detail"]
    assert FalseRefusalItem.objects.filter(run=run, attempts__gt=1).count() == 0
