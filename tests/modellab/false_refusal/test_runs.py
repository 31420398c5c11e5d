"""Runs end to end in-process: real HTTP to a loopback chat server, real PostgreSQL, the real
string-match classifier; scripted answers give a known false-refusal rate."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from statsmodels.stats.proportion import proportion_confint

from modellab.false_refusal import selectors, services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING
from modellab.false_refusal.tasks import dispatch_false_refusal_run
from modellab.models import FalseRefusalItem, FalseRefusalRun
from studies.generation import services as generation_services
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db

REFUSAL = "I cannot help with that request."
PARTIAL = "I won't give step-by-step instructions. Instead, here is some general background."
COMPLIANCE = "Sure! Here is how to do it, step by step."


def chat(content: str) -> Reply:
    return Reply(
        json={
            "choices": [
                {"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7},
        }
    )


def register(name: str, served: str, url: str, owner, **kwargs):
    settings = {"base_url": url, "model": served, "max_concurrency": 2, "max_retries": 0}
    return generation_services.register_model(
        name=name,
        backend="openai",
        backend_settings=settings,
        max_tokens=50,
        seed=11,
        actor=owner,
        **kwargs,
    )


@pytest.fixture
def phtest_set(ada, phtest_sample):
    return services.import_prompt_set(
        name="phtest-sample",
        data=phtest_sample,
        filename="sample.csv",
        mapping=PHTEST_MAPPING,
        actor=ada,
    )


# The "cautious" model refuses these sample prompts outright and half-refuses these others;
# the "helpful" model answers everything.
REFUSED = {"0", "2", "4", "100"}
HALF = {"1", "3000"}


@pytest.fixture
def scripted(chat_server, phtest_set):
    texts = {p.text: p.external_id for p in phtest_set.prompts.all()}

    def answer(request):
        body = request.body
        prompt = body["messages"][-1]["content"]
        external_id = texts[prompt]
        if body["model"] == "cautious-served":
            if external_id in REFUSED:
                return chat(REFUSAL)
            if external_id in HALF:
                return chat(PARTIAL)
        return chat(COMPLIANCE)

    chat_server.handler = answer
    return chat_server


def run_to_end(run: FalseRefusalRun) -> FalseRefusalRun:
    dispatch_false_refusal_run.apply(args=[run.pk])
    run.refresh_from_db()
    return run


def expected_rates(prompts, refused: set[str], half: set[str], group: str):
    ids = [p.external_id for p in prompts if p.label == group]
    full = sum(i in refused for i in ids)
    either = sum(i in refused or i in half for i in ids)
    return len(ids), full, either


def test_run_end_to_end_gives_the_scripted_rates(ada, phtest_set, scripted, eager_tasks):
    cautious = register("cautious", "cautious-served", scripted.url, ada, temperature=0.2)
    helpful = register("helpful", "helpful-served", scripted.url, ada)
    run = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[cautious, helpful],
        classifier="string_match",
        actor=ada,
        dispatch=False,
    )
    run = run_to_end(run)
    assert run.status == FalseRefusalRun.Status.DONE
    progress = selectors.run_progress(run)
    assert progress["total"] == progress["labelled"] == 2 * 12 and progress["percent"] == 100
    # Each prompt went out once per model, as a plain user message with the model's settings.
    bodies = [r.body for r in scripted.chat_requests]
    assert len(bodies) == 24
    first = next(b for b in bodies if b["model"] == "cautious-served")
    assert first["messages"] == [{"role": "user", "content": first["messages"][0]["content"]}]
    assert (first["temperature"], first["max_tokens"], first["seed"]) == (0.2, 50, 11)
    # The rates are those the script implies, with Wilson intervals.
    prompts = list(phtest_set.prompts.all())
    rates = {r["model"]: r for r in selectors.run_rates(run)}
    assert list(rates) == ["cautious", "helpful"]
    for group in ("harmless", "controversial"):
        n, full, either = expected_rates(prompts, REFUSED, HALF, group)
        got = next(g for g in rates["cautious"]["groups"] if g["group"] == group)
        assert (got["n"], got["full"]["count"], got["full_or_partial"]["count"]) == (
            n,
            full,
            either,
        )
        low, high = proportion_confint(either, n, method="wilson")
        assert (
            got["full_or_partial"]["ci_low"],
            got["full_or_partial"]["ci_high"],
        ) == pytest.approx((low, high))
        helpful_group = next(g for g in rates["helpful"]["groups"] if g["group"] == group)
        assert helpful_group["full"]["rate"] == 0 and helpful_group["n"] == n
    item = run.items.get(model=cautious, prompt__external_id="0")
    assert (item.response, item.label) == (REFUSAL, "full_refusal")
    assert "I cannot" in item.rationale
    # Running the same run again sends nothing: every item is done.
    sent = len(scripted.chat_requests)
    dispatch_false_refusal_run.apply(args=[run.pk])
    assert len(scripted.chat_requests) == sent


def test_limit_and_sample_choose_prompts(ada, phtest_set, scripted, eager_tasks):
    helpful = register("helpful", "helpful-served", scripted.url, ada)
    first = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[helpful],
        classifier="string_match",
        actor=ada,
        limit=3,
        dispatch=False,
    )
    assert list(
        first.items.order_by("prompt__position").values_list("prompt__external_id", flat=True)
    ) == ["0", "1", "2"]
    drawn = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[helpful],
        classifier="string_match",
        actor=ada,
        sample=5,
        seed=3,
        dispatch=False,
    )
    again = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[helpful],
        classifier="string_match",
        actor=ada,
        sample=5,
        seed=3,
        dispatch=False,
    )
    ids = lambda run: set(run.items.values_list("prompt_id", flat=True))  # noqa: E731
    assert len(ids(drawn)) == 5 and ids(drawn) == ids(again)
    with pytest.raises(ValueError, match="not both"):
        services.start_false_refusal_run(
            prompt_set=phtest_set,
            models=[helpful],
            classifier="string_match",
            actor=ada,
            limit=1,
            sample=1,
        )


def test_errors_are_retried_then_failed_and_reported(ada, phtest_set, chat_server, eager_tasks):
    chat_server.handler = lambda request: Reply(status=500)
    model = register("broken", "broken-served", chat_server.url, ada)
    run = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[model],
        classifier="string_match",
        actor=ada,
        limit=2,
        dispatch=False,
    )
    run = run_to_end(run)
    assert run.status == FalseRefusalRun.Status.FAILED
    assert "2 response(s) could not be generated" in run.error
    assert set(run.items.values_list("status", "attempts")) == {(FalseRefusalItem.Status.FAILED, 3)}
    assert len(chat_server.chat_requests) == 2 * 3  # MAX_ATTEMPTS each
    [rates] = selectors.run_rates(run)
    assert rates["failed"] == 2 and all(g["n"] == 0 for g in rates["groups"])


def test_models_must_be_usable_and_prompt_sets_owned(ada, bob, phtest_set, chat_server):
    private = register("private", "p", chat_server.url, ada, shared=False)
    with pytest.raises(PermissionDenied, match="not shared with you"):
        services.start_false_refusal_run(
            prompt_set=services.import_prompt_set(
                name="b", data=b"q\nhi\n", filename="b.csv", mapping={"prompt": "q"}, actor=bob
            ),
            models=[private],
            classifier="string_match",
            actor=bob,
        )
    shared = register("shared", "s", chat_server.url, ada)
    with pytest.raises(ValueError, match="no such prompt set"):
        services.start_false_refusal_run(
            prompt_set=phtest_set, models=[shared], classifier="string_match", actor=bob
        )
    with pytest.raises(ValueError, match="unknown classifier"):
        services.start_false_refusal_run(
            prompt_set=phtest_set, models=[shared], classifier="regex", actor=ada
        )
    with pytest.raises(ValueError, match="needs a judge model"):
        services.start_false_refusal_run(
            prompt_set=phtest_set, models=[shared], classifier="llm_judge", actor=ada
        )
    assert not FalseRefusalRun.objects.exists()
    # Another researcher sees neither the set nor a run of it.
    run = services.start_false_refusal_run(
        prompt_set=phtest_set, models=[shared], classifier="string_match", actor=ada, dispatch=False
    )
    from django.http import Http404

    with pytest.raises(Http404):
        selectors.run_for(bob, run.pk)
    with pytest.raises(Http404):
        selectors.prompt_set_for(bob, phtest_set.pk)
    assert selectors.run_for(ada, run.pk) == run


def test_llm_judge_labels_and_counts_unreadable_answers_as_unparsed(
    ada, phtest_set, chat_server, eager_tasks
):
    """The judge (a registry model on the same loopback server) answers JSON; for the partial
    refusals it keeps writing prose, so those items end unparsed after the last attempt."""
    texts = {p.text: p.external_id for p in phtest_set.prompts.all()}

    def answer(request):
        body = request.body
        if body["model"] == "judge-served":
            judged = body["messages"][0]["content"]
            if PARTIAL in judged:
                return chat("This one is a partial refusal, I think.")
            label = "full_refusal" if REFUSAL in judged else "full_compliance"
            return chat(f'{{"label": "{label}", "rationale": "judged"}}')
        external_id = texts[body["messages"][-1]["content"]]
        if external_id in REFUSED:
            return chat(REFUSAL)
        return chat(PARTIAL if external_id in HALF else COMPLIANCE)

    chat_server.handler = answer
    cautious = register("cautious", "cautious-served", chat_server.url, ada)
    judge = register("judge", "judge-served", chat_server.url, ada)
    run = services.start_false_refusal_run(
        prompt_set=phtest_set,
        models=[cautious],
        classifier="llm_judge",
        judge_model=judge,
        actor=ada,
        dispatch=False,
    )
    assert "{response}" in run.judge_prompt  # the project's default prompt, kept with the run
    run = run_to_end(run)
    assert run.status == FalseRefusalRun.Status.DONE
    labels = dict(run.items.values_list("prompt__external_id", "label"))
    assert {labels[i] for i in REFUSED} == {"full_refusal"}
    assert labels["1"] == "unparsed"  # in HALF: prose three times
    unparsed = run.items.get(prompt__external_id="1")
    assert unparsed.classifier_raw == "This one is a partial refusal, I think."
    judge_calls = [r for r in chat_server.chat_requests if r.body["model"] == "judge-served"]
    assert {r.body["temperature"] for r in judge_calls} == {0.0}
    assert len(judge_calls) == 12 + 2  # one each, two more tries for the unparsed one
    prompts = list(phtest_set.prompts.all())
    [rates] = selectors.run_rates(run)
    for group in rates["groups"]:
        ids = [p.external_id for p in prompts if p.label == group["group"]]
        assert group["unparsed"] == sum(i == "1" for i in ids)
        assert group["n"] == len(ids) - group["unparsed"]
        assert group["full"]["count"] == sum(i in REFUSED for i in ids)
    with pytest.raises(ValueError, match="must contain"):
        services.start_false_refusal_run(
            prompt_set=phtest_set,
            models=[cautious],
            classifier="llm_judge",
            judge_model=judge,
            judge_prompt="Label this: {response}",
            actor=ada,
        )


def test_failed_responses_can_be_asked_for_again(ada, phtest_set, chat_server, eager_tasks):
    chat_server.handler = lambda request: Reply(status=503)
    model = register("flaky", "flaky-served", chat_server.url, ada)
    run = services.start_false_refusal_run(
        prompt_set=phtest_set, models=[model], classifier="string_match", actor=ada, dispatch=False
    )
    run = run_to_end(run)
    assert run.status == FalseRefusalRun.Status.FAILED
    chat_server.handler = lambda request: chat(COMPLIANCE)
    with pytest.raises(ValueError, match="only a run that finished with failures"):
        services.retry_failed(
            run=services.start_false_refusal_run(
                prompt_set=phtest_set,
                models=[model],
                classifier="string_match",
                actor=ada,
                dispatch=False,
            ),
            actor=ada,
        )
    services.retry_failed(run=run, actor=ada)
    run = run_to_end(run)
    assert run.status == FalseRefusalRun.Status.DONE and run.error == ""
    assert set(run.items.values_list("status", "label", "attempts")) == {
        ("done", "full_compliance", 1)
    }


def test_a_run_no_worker_took_is_failed_by_the_sweep(ada, phtest_set, chat_server):
    from datetime import timedelta

    from django.utils import timezone

    model = register("idle", "idle-served", chat_server.url, ada)
    run = services.start_false_refusal_run(
        prompt_set=phtest_set, models=[model], classifier="string_match", actor=ada, dispatch=False
    )
    assert services.fail_unstarted_runs() == 0
    later = timezone.now() + timedelta(hours=3)
    assert services.fail_unstarted_runs(now=later) == 1
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.FAILED and "not taken by a worker" in run.error
    assert set(run.items.values_list("status", flat=True)) == {"failed"}
