"""Reward runs in-process (tasks inline): the LLM judge against the loopback chat server with
malformed answers, reruns that fill only what is missing, the permission rules."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

from modellab.models import RewardRun, RewardScore
from modellab.rewards import selectors, services
from modellab.rewards.tasks import dispatch_reward_run
from studies.domain import RESPONSE_TYPES
from studies.generation import services as generation_services
from studies.models import AuditEvent, ResponseVariant, StudyMembership
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db

# What the scripted judge answers per response type (redirection above partial compliance).
JUDGE_SCORES = {
    "direct_refusal": -3,
    "explanation_based": -2,
    "redirection": 1,
    "partial_compliance": 0,
    "full_compliance": 3,
}


@pytest.fixture
def judge(chat_server, researcher):
    return generation_services.register_model(
        name="judge",
        backend="openai",
        backend_settings={
            "base_url": chat_server.url,
            "model": "judge-served",
            "max_concurrency": 4,
            "max_retries": 0,
        },
        temperature=0.7,
        max_tokens=128,
        seed=3,
        actor=researcher,
    )


def texts_by_type(study) -> dict[str, str]:
    """Each approved text → its response type, to script answers by what the judge reads."""
    return dict(
        ResponseVariant.objects.filter(query__study=study, review_status="approved").values_list(
            "text", "response_type"
        )
    )


def judged(variant: ResponseVariant) -> str:
    """What the judge reads for a variant with its query alone."""
    return (
        f"The request:\n<<<\n{variant.query.text}\n>>>\n\n"
        f"The assistant's reply:\n<<<\n{variant.text}\n>>>"
    )


def scripted_judge(chat_server, study, *, broken=None, flaky=None):
    """Answer with the type's score; always garble the ``broken`` variant's query-alone
    conversation, and ``flaky``'s first answer only."""
    types = texts_by_type(study)
    seen: dict[str, int] = {}
    broken_content = judged(broken) if broken else None
    flaky_content = judged(flaky) if flaky else None

    def handler(request):
        content = request.body["messages"][1]["content"]
        reply = content.split("The assistant's reply:\n<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
        seen[content] = seen.get(content, 0) + 1
        if content == broken_content:
            return Reply(json=_chat("I'd give it a 2, I think."))
        if content == flaky_content and seen[content] == 1:
            return Reply(json=_chat('{"score": "two"}'))
        score = JUDGE_SCORES[types[reply]]
        return Reply(json=_chat(json.dumps({"score": score, "rationale": f"type {types[reply]}"})))

    chat_server.handler = handler


def _chat(content: str) -> dict:
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }


def run(study, model, scorer, actor, **kwargs) -> RewardRun:
    reward_run = services.start_reward_run(
        study=study, model=model, scorer=scorer, actor=actor, dispatch=False, **kwargs
    )
    if reward_run.status == RewardRun.Status.QUEUED:
        dispatch_reward_run.apply(args=[reward_run.pk])
    reward_run.refresh_from_db()
    return reward_run


def test_judge_scores_every_stimulus_and_keeps_unparsed_answers(
    owned_study, researcher, judge, chat_server, eager_tasks
):
    study = owned_study
    q01 = ResponseVariant.objects.filter(query__study=study, query__query_id="q01")
    broken = q01.get(response_type="full_compliance")
    flaky = q01.get(response_type="direct_refusal")
    scripted_judge(chat_server, study, broken=broken, flaky=flaky)

    reward_run = run(study, judge, "llm_judge", researcher)

    approved = ResponseVariant.objects.filter(query__study=study, review_status="approved")
    scenarios = {q.pk: q.scenarios.count() for q in study.queries.all()}
    expected = sum(1 + scenarios[v.query_id] for v in approved)
    assert reward_run.n_total == expected == RewardScore.objects.filter(run=reward_run).count()
    # One conversation never parsed: kept with its raw answer, counted, named in the message.
    assert reward_run.status == RewardRun.Status.DONE
    assert reward_run.n_unparsed == 1 and reward_run.n_done == expected - 1
    assert "1 judge answer(s) could not be parsed" in reward_run.error
    unparsed = RewardScore.objects.get(run=reward_run, status="unparsed")
    assert unparsed.variant == broken and unparsed.motivation == ""
    assert unparsed.raw_answer == "I'd give it a 2, I think." and unparsed.score is None
    assert unparsed.attempts == services.MAX_ATTEMPTS
    # The flaky one parsed on its second try.
    flaky_score = RewardScore.objects.get(run=reward_run, variant=flaky, motivation="")
    assert (flaky_score.status, flaky_score.score, flaky_score.attempts) == ("done", -3.0, 2)
    # Judged at temperature 0 with the registered model's seed, the prompt as system turn.
    bodies = [r.body for r in chat_server.chat_requests]
    assert len(bodies) == expected + 1 + (services.MAX_ATTEMPTS - 1)
    assert {b["temperature"] for b in bodies} == {0.0} and {b["seed"] for b in bodies} == {3}
    assert bodies[0]["messages"][0]["content"] == reward_run.judge_prompt
    # Per response type: the scripted scores, raw and z-scored.
    by_type = {r["response_type"]: r for r in selectors.results_by_type(reward_run)}
    assert list(by_type) == list(RESPONSE_TYPES)
    for response_type, score in JUDGE_SCORES.items():
        assert by_type[response_type]["mean"] == pytest.approx(score)
    assert by_type["full_compliance"]["z_mean"] > by_type["redirection"]["z_mean"] > 0
    # The CSV has every score, the unparsed one with its raw answer.
    lines = selectors.scores_csv(reward_run).splitlines()
    assert lines[0].startswith("run,model,scorer,query_id") and len(lines) == expected + 1
    assert sum(",unparsed," in line for line in lines) == 1


def test_rerun_scores_only_what_is_missing_or_changed(
    owned_study, researcher, judge, chat_server, eager_tasks
):
    study = owned_study
    scripted_judge(chat_server, study)
    first = run(study, judge, "llm_judge", researcher)
    assert first.status == RewardRun.Status.DONE and first.n_done == first.n_total
    sent = len(chat_server.chat_requests)

    # Nothing new: the same run, nothing sent.
    again = run(study, judge, "llm_judge", researcher)
    assert again.pk == first.pk and len(chat_server.chat_requests) == sent
    assert again.n_done == first.n_total

    # A failed score and an edited text (3 framings) are scored again; nothing else is.
    RewardScore.objects.filter(run=first).order_by("pk").filter(
        pk=RewardScore.objects.filter(run=first).order_by("pk").first().pk
    ).update(status="failed", score=None)
    variant = ResponseVariant.objects.filter(query__study=study, query__query_id="q05").first()
    generation_services.edit_variant(variant=variant, text=variant.text + " Edited.", actor=None)
    chat_server.handler = None
    scripted_judge(chat_server, study)
    third = run(study, judge, "llm_judge", researcher)
    assert third.pk == first.pk and third.status == RewardRun.Status.DONE
    assert len(chat_server.chat_requests) - sent == 1 + 3
    assert RewardScore.objects.filter(run=first, status="done").count() == first.n_total
    assert AuditEvent.objects.filter(study=study, action="reward_run_started").count() == 3


def test_a_different_judge_prompt_is_a_run_of_its_own(
    owned_study, researcher, judge, chat_server, eager_tasks
):
    scripted_judge(chat_server, owned_study)
    default = run(owned_study, judge, "llm_judge", researcher)
    custom = run(owned_study, judge, "llm_judge", researcher, judge_prompt="Rate it. JSON only.")
    assert custom.pk != default.pk and custom.judge_prompt == "Rate it. JSON only."
    assert chat_server.chat_requests[-1].body["messages"][0]["content"] == "Rate it. JSON only."


def test_scorer_and_model_must_fit(owned_study, researcher, judge):
    with pytest.raises(ValueError, match="local transformers model"):
        services.start_reward_run(
            study=owned_study, model=judge, scorer="reward_model", actor=researcher
        )
    with pytest.raises(ValueError, match="scorer must be one of"):
        services.start_reward_run(study=owned_study, model=judge, scorer="vibes", actor=researcher)
    ResponseVariant.objects.filter(query__study=owned_study).update(review_status="rejected")
    with pytest.raises(ValueError, match="no approved responses"):
        services.start_reward_run(
            study=owned_study, model=judge, scorer="llm_judge", actor=researcher
        )
    assert not RewardRun.objects.exists()


def test_only_editors_with_the_model_may_start_a_run(owned_study, researcher, judge):
    users = get_user_model().objects
    viewer = users.create_user("vic", password="pw-vic-123456")
    outsider = users.create_user("otto", password="pw-otto-123456")
    StudyMembership.objects.create(study=owned_study, user=viewer, role="viewer")
    for user in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            services.start_reward_run(
                study=owned_study, model=judge, scorer="llm_judge", actor=user
            )
    # An editor may not use a model its owner did not share.
    editor = users.create_user("eddie", password="pw-eddie-123456")
    StudyMembership.objects.create(study=owned_study, user=editor, role="editor")
    judge.shared = False
    judge.save()
    with pytest.raises(PermissionDenied, match="not shared"):
        services.start_reward_run(study=owned_study, model=judge, scorer="llm_judge", actor=editor)
    assert not RewardRun.objects.exists()


def test_a_run_no_worker_takes_is_failed_and_can_be_started_again(
    owned_study, researcher, judge, chat_server, eager_tasks, settings
):
    from datetime import timedelta

    from django.utils import timezone

    scripted_judge(chat_server, owned_study)
    # Started, but its message never reached a worker (dispatch left out here).
    stuck = services.start_reward_run(
        study=owned_study, model=judge, scorer="llm_judge", actor=researcher, dispatch=False
    )
    assert stuck.status == RewardRun.Status.QUEUED
    # Not yet: within the limit nothing happens.
    assert services.fail_unstarted_runs() == 0
    later = timezone.now() + timedelta(minutes=settings.JOB_QUEUED_LIMIT_MINUTES + 1)
    assert services.fail_unstarted_runs(now=later) == 1
    stuck.refresh_from_db()
    assert stuck.status == RewardRun.Status.FAILED and "not taken by a worker" in stuck.error
    assert stuck.n_failed == stuck.n_total > 0
    assert selectors.run_progress(stuck)["finished"]
    # Starting it again scores everything.
    again = run(owned_study, judge, "llm_judge", researcher)
    assert again.pk == stuck.pk and again.status == RewardRun.Status.DONE
    assert again.n_done == again.n_total and again.error == ""
