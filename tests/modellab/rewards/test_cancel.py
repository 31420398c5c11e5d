"""Cancelling a reward run: batches already queued store nothing, starting the same scorer
again scores only what is missing, and only editors may cancel (page and API)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from modellab.models import RewardRun, RewardScore
from modellab.rewards import scorers, selectors, services
from modellab.rewards.tasks import dispatch_reward_run, score_reward_batch
from studies.generation import services as generation_services
from studies.models import AuditEvent, StudyMembership
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db


def answer(request):
    text = json.dumps({"score": 1, "rationale": "scripted"})
    return Reply(json={"choices": [{"message": {"role": "assistant", "content": text}}]})


@pytest.fixture
def judge(chat_server, researcher):
    chat_server.handler = answer
    # max_concurrency 1: batches of 4 scores, so a study's stimuli make several batches.
    return generation_services.register_model(
        name="judge",
        backend="openai",
        backend_settings={
            "base_url": chat_server.url,
            "model": "j",
            "max_concurrency": 1,
            "max_retries": 0,
        },
        actor=researcher,
    )


def queued_batches(study, judge, actor) -> tuple[RewardRun, list[tuple[str, list[int]]]]:
    """A started run whose dispatch sent its batches, none of them taken by a worker yet."""
    run = services.start_reward_run(
        study=study, model=judge, scorer="llm_judge", actor=actor, dispatch=False
    )
    services.mark_run_running(run=run)
    batches = services.plan_batches(run)
    assert len(batches) >= 3
    return run, batches


def statuses(run: RewardRun) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in run.scores.values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_cancel_stops_a_queued_run_and_its_batches_store_nothing(
    owned_study, researcher, judge, chat_server, eager_tasks
):
    run, batches = queued_batches(owned_study, judge, researcher)
    total = run.scores.count()

    cancelled = services.cancel_run(run=run, actor=researcher)

    assert cancelled.status == RewardRun.Status.CANCELLED and cancelled.finished_at
    assert statuses(cancelled) == {"cancelled": total}
    assert (cancelled.n_total, cancelled.n_done, cancelled.n_failed) == (total, 0, 0)
    assert f"{total} score(s) were not taken" in cancelled.error
    progress = selectors.run_progress(cancelled)
    assert progress["finished"] and progress["cancelled"] == total
    assert AuditEvent.objects.filter(study=owned_study, action="reward_run_cancelled").count() == 1
    # The batches already queued are delivered afterwards: nothing is asked, nothing stored.
    for batch, score_ids in batches:
        assert score_reward_batch.apply(args=[run.pk, score_ids, batch]).get() == {
            "skipped": "cancelled"
        }
    assert chat_server.chat_requests == []
    assert statuses(run) == {"cancelled": total}
    # Cancelling again changes nothing (and records nothing more).
    assert services.cancel_run(run=run, actor=researcher).status == RewardRun.Status.CANCELLED
    assert AuditEvent.objects.filter(action="reward_run_cancelled").count() == 1


def test_a_batch_working_when_the_run_is_cancelled_stores_nothing(owned_study, researcher, judge):
    run, batches = queued_batches(owned_study, judge, researcher)
    batch, score_ids = batches[0]
    # A worker took the batch and is scoring it while the run is cancelled.
    claimed = services.claim_batch(run_id=run.pk, score_ids=score_ids, batch=batch)
    assert len(claimed) == len(score_ids)
    services.cancel_run(run=run, actor=researcher)
    outcomes = [scorers.ScoreOutcome(score=2.0, raw="{}") for _ in claimed]
    result = services.record_batch(
        scores=claimed,
        conversations=services.conversations_for(claimed),
        outcomes=outcomes,
        batch=batch,
    )
    assert (result.done, result.failed, result.retry_ids) == (0, 0, [])
    assert not run.scores.filter(score__isnull=False).exists()
    assert statuses(run) == {"cancelled": run.scores.count()}


def test_starting_again_after_a_cancel_scores_only_what_is_missing(
    owned_study, researcher, judge, chat_server, eager_tasks
):
    run, batches = queued_batches(owned_study, judge, researcher)
    total = run.scores.count()
    (first, first_ids), (second, second_ids) = batches[0], batches[1]
    # One batch is scored, then the run is cancelled (say, its worker went away).
    score_reward_batch.apply(args=[run.pk, first_ids, first])
    assert len(chat_server.chat_requests) == len(first_ids)
    services.cancel_run(run=run, actor=researcher)
    run.refresh_from_db()
    assert run.n_done == len(first_ids) and statuses(run)["cancelled"] == total - len(first_ids)

    again = services.start_reward_run(
        study=owned_study, model=judge, scorer="llm_judge", actor=researcher, dispatch=False
    )
    assert again.pk == run.pk and again.status == RewardRun.Status.QUEUED
    # A batch of the cancelled start, delivered late, is not the restart's: it asks nothing.
    assert score_reward_batch.apply(args=[run.pk, second_ids, second]).get() == {
        "skipped": "nothing open"
    }
    assert len(chat_server.chat_requests) == len(first_ids)
    dispatch_reward_run.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == RewardRun.Status.DONE and run.error == ""
    assert run.n_done == run.n_total == total
    # Every stimulus was judged exactly once over the two starts.
    assert len(chat_server.chat_requests) == total
    assert set(run.scores.values_list("attempts", flat=True)) == {1}


def test_only_editors_may_cancel(client, owned_study, researcher, judge):
    users = get_user_model().objects
    viewer = users.create_user("vic", password="pw-vic-123456")
    editor = users.create_user("eddie", password="pw-eddie-123456")
    outsider = users.create_user("otto", password="pw-otto-123456")
    StudyMembership.objects.create(study=owned_study, user=viewer, role="viewer")
    StudyMembership.objects.create(study=owned_study, user=editor, role="editor")
    run, _ = queued_batches(owned_study, judge, researcher)
    slug = owned_study.slug
    page = reverse("modellab:rewards", kwargs={"slug": slug}) + f"?run={run.pk}"
    cancel = reverse("modellab:rewards-cancel", args=[slug, run.pk])
    api = reverse("modellab:api-reward-run-cancel", args=[slug, run.pk])

    for user in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            services.cancel_run(run=run, actor=user)
    client.force_login(viewer)
    html = client.get(page).content.decode()
    assert "Cancel the run" not in html and cancel not in html
    assert client.post(cancel).status_code == 403
    assert client.post(api).status_code == 403
    client.force_login(outsider)
    assert client.post(cancel).status_code == 404
    assert client.post(api).status_code == 404
    run.refresh_from_db()
    assert run.status == RewardRun.Status.RUNNING
    assert not run.scores.filter(status=RewardScore.Status.CANCELLED).exists()

    client.force_login(editor)
    html = client.get(page).content.decode()
    assert "Cancel the run" in html and f'action="{cancel}"' in html
    response = client.post(cancel)
    assert response.status_code == 302 and response["Location"].endswith(f"?run={run.pk}")
    run.refresh_from_db()
    assert run.status == RewardRun.Status.CANCELLED
    # A finished run has no Cancel button.
    assert "Cancel the run" not in client.get(page).content.decode()
    event = AuditEvent.objects.get(action="reward_run_cancelled")
    assert event.actor == editor


def test_api_cancel_returns_the_run(client, owned_study, researcher, judge):
    # Started, but its message never reached a worker: it stays queued until cancelled.
    run = services.start_reward_run(
        study=owned_study, model=judge, scorer="llm_judge", actor=researcher, dispatch=False
    )
    assert run.status == RewardRun.Status.QUEUED
    client.force_login(researcher)
    url = reverse("modellab:api-reward-run-cancel", args=[owned_study.slug, run.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == run.pk and body["progress"]["status"] == "cancelled"
    assert body["progress"]["finished"] and body["progress"]["cancelled"] == run.scores.count()
    # Cancelling a finished run returns it as it is.
    again = client.post(url).json()
    assert again["progress"] == body["progress"]
