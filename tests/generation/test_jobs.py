"""Generation jobs end to end in-process: real HTTP to a loopback chat server, real PostgreSQL."""

from __future__ import annotations

import json

import pytest

from studies import selectors as study_selectors
from studies import services as study_services
from studies.domain import RESPONSE_TYPES
from studies.generation import selectors, services
from studies.models import GenerationItem, GenerationJob, ResponseVariant, Study
from studies.tasks import dispatch_generation_job
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(chat_server):
    return services.register_model(
        name="loopback",
        backend="openai",
        backend_settings={
            "base_url": chat_server.url,
            "model": "served-name",
            "max_concurrency": 4,
            "max_retries": 0,
            "backoff_base_s": 0.01,
        },
        temperature=0.3,
        max_tokens=64,
        seed=7,
    )


def run_job(study: Study, model, **kwargs) -> GenerationJob:
    job = services.start_generation_job(study=study, model=model, dispatch=False, **kwargs)
    dispatch_generation_job.apply(args=[job.pk])
    job.refresh_from_db()
    return job


def test_strategy_job_writes_every_type_as_reviewable_stimuli(
    make_study, model, chat_server, eager_tasks
):
    study = make_study(launch=False)
    job = run_job(study, model)
    assert job.status == GenerationJob.Status.DONE
    progress = selectors.job_progress(job)
    assert progress["done"] == progress["total"] == 16 * 5
    generated = ResponseVariant.objects.filter(query__study=study, model_name="loopback")
    assert generated.count() == 80
    assert set(generated.values_list("review_status", flat=True)) == {"generated"}
    variant = generated.get(query__query_id="q01", response_type="redirection")
    assert variant.text == "reply to: " + variant.query.text
    assert variant.provenance["model"] == "loopback"
    assert variant.provenance["params"]["temperature"] == 0.3
    assert variant.provenance["prompt"][0]["role"] == "system"
    assert variant.provenance["completion_tokens"] > 0
    # The requests the endpoint saw: the served model name, the study's query, the parameters.
    bodies = [r.body for r in chat_server.chat_requests]
    assert len(bodies) == 80
    assert {b["model"] for b in bodies} == {"served-name"}
    assert {b["max_tokens"] for b in bodies} == {64} and {b["seed"] for b in bodies} == {7}
    study.refresh_from_db()
    assert study.status == Study.Status.REVIEW


def test_rerun_fills_only_what_is_missing(make_study, model, chat_server, eager_tasks):
    study = make_study(launch=False)
    first = run_job(study, model)
    GenerationItem.objects.filter(job=first, query__query_id__in=["q01", "q02"]).update(
        status=GenerationItem.Status.FAILED, text=""
    )
    sent = len(chat_server.chat_requests)
    second = run_job(study, model)
    assert second.status == GenerationJob.Status.DONE
    assert len(chat_server.chat_requests) - sent == 10
    assert GenerationItem.objects.filter(study=study).count() == 80
    assert ResponseVariant.objects.filter(query__study=study, model_name="loopback").count() == 80
    third = run_job(study, model)
    assert third.items.count() == 0 and third.status == GenerationJob.Status.DONE


def test_structured_mode_fills_all_five_types_from_one_call(
    make_study, model, chat_server, eager_tasks
):
    def five(request):
        return Reply(json=_chat({key: f"{key} reply" for key in RESPONSE_TYPES}))

    chat_server.handler = five
    study = make_study(launch=False)
    job = run_job(study, model, mode="structured")
    assert job.status == GenerationJob.Status.DONE
    assert len(chat_server.chat_requests) == 16
    texts = dict(
        ResponseVariant.objects.filter(
            query__study=study, model_name="loopback", query__query_id="q03"
        ).values_list("response_type", "text")
    )
    assert texts == {key: f"{key} reply" for key in RESPONSE_TYPES}


def _chat(payload: dict) -> dict:
    return {
        "choices": [
            {
                "message": {"role": "assistant", "content": json.dumps(payload)},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 50},
    }


def test_malformed_structured_output_is_retried_then_failed_with_raw_text(
    make_study, model, chat_server, eager_tasks
):
    chat_server.handler = lambda request: Reply(json=_chat({"direct_refusal": "No."}))
    study = make_study(launch=False)
    study.queries.exclude(query_id="q01").delete()
    job = run_job(study, model, mode="structured")
    assert job.status == GenerationJob.Status.FAILED
    assert len(chat_server.chat_requests) == services.MAX_ATTEMPTS
    items = GenerationItem.objects.filter(job=job)
    assert {i.status for i in items} == {"failed"}
    item = items.first()
    assert item.attempts == services.MAX_ATTEMPTS
    assert "lacks text for" in item.error
    assert '"direct_refusal": "No."' in item.raw_output
    assert "failed" in job.error


def test_model_error_fails_items_with_the_endpoints_message(
    make_study, model, chat_server, eager_tasks
):
    chat_server.handler = lambda request: Reply(status=400, json={"error": {"message": "bad"}})
    study = make_study(launch=False)
    study.queries.exclude(query_id="q01").delete()
    job = run_job(study, model)
    assert job.status == GenerationJob.Status.FAILED
    assert len(chat_server.chat_requests) == 5  # not retried: a 400 will not change
    errors = set(GenerationItem.objects.filter(job=job).values_list("error", flat=True))
    assert len(errors) == 1 and "400" in errors.pop()
    assert not ResponseVariant.objects.filter(model_name="loopback").exists()


def test_cancelled_job_leaves_a_clear_state(make_study, model, chat_server, eager_tasks):
    study = make_study(launch=False)
    job = services.start_generation_job(study=study, model=model, dispatch=False)
    services.cancel_job(job=job)
    dispatch_generation_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.CANCELLED
    assert set(job.items.values_list("status", flat=True)) == {"cancelled"}
    assert chat_server.chat_requests == []
    study.refresh_from_db()
    assert study.status == Study.Status.REVIEW
    # A new job picks the cancelled texts up again.
    assert run_job(study, model).status == GenerationJob.Status.DONE


def test_natural_responses_use_three_framings(make_study, model, chat_server, eager_tasks):
    study = make_study(launch=False)
    study.queries.exclude(query_id="q02").delete()
    job = run_job(study, model, kind="natural", samples=2)
    assert job.items.count() == 3 * 2
    prompts = [r.body["messages"] for r in chat_server.chat_requests]
    assert all(len(m) == 1 and m[0]["role"] == "user" for m in prompts)
    query = study.queries.get()
    scenarios = {s.motivation: s.text for s in query.scenarios.all()}
    contents = {m[0]["content"] for m in prompts}
    assert query.text in contents
    assert any(c.startswith(scenarios["benign"]) for c in contents)
    assert any(c.startswith(scenarios["malicious"]) for c in contents)
    # Natural responses are data about the model, not stimuli.
    assert not ResponseVariant.objects.filter(model_name="loopback").exists()


def test_generation_is_refused_once_live(make_study, model):
    study = make_study(target_participants=4)
    with pytest.raises(Exception, match="live"):
        services.start_generation_job(study=study, model=model, dispatch=False)


def test_approving_a_generated_text_makes_it_the_stimulus(make_study, model, eager_tasks):
    study = make_study(launch=False)
    run_job(study, model)
    generated = ResponseVariant.objects.get(
        query__query_id="q01",
        query__study=study,
        model_name="loopback",
        response_type="redirection",
    )
    services.edit_variant(variant=generated, text="Edited redirection.")
    services.approve_variant(variant=generated)
    approved = ResponseVariant.objects.filter(
        query=generated.query, response_type="redirection", review_status="approved"
    )
    assert list(approved) == [generated]
    generated.refresh_from_db()
    assert generated.text == "Edited redirection."
    assert generated.provenance["edits"][0]["previous_text"].startswith("reply to:")
    assert study_selectors.launch_problems(study) == []
    study_services.launch_study(study=study)


def test_two_approved_texts_for_one_type_block_launch(make_study, model, eager_tasks):
    study = make_study(launch=False)
    run_job(study, model)
    ResponseVariant.objects.filter(
        query__study=study, query__query_id="q04", response_type="direct_refusal"
    ).update(review_status="approved")
    problems = study_selectors.launch_problems(study)
    assert any("q04 has more than one approved response for: direct_refusal" in p for p in problems)


def test_register_model_rejects_bad_settings():
    with pytest.raises(ValueError, match="base_url"):
        services.register_model(name="x", backend="openai", backend_settings={"model": "m"})
    with pytest.raises(ValueError, match="backend"):
        services.register_model(name="x", backend="magic", backend_settings={})


def _chat_text(content: str) -> dict:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def test_an_answer_with_characters_postgresql_cannot_store_is_kept_readable(
    make_study, model, chat_server, eager_tasks
):
    # A random-weight local model (or a buggy endpoint) can answer with NUL or a lone
    # surrogate: PostgreSQL stores neither, and the job used to crash with its items stuck.
    chat_server.handler = lambda request: Reply(json=_chat_text("a\x00b \ud800c"))
    study = make_study(launch=False)
    job = run_job(study, model)
    assert job.status == GenerationJob.Status.DONE
    variant = ResponseVariant.objects.filter(query__study=study, model_name="loopback").first()
    assert variant.text == "a\ufffdb \ufffdc"
    assert GenerationItem.objects.filter(job=job).first().raw_output == "a\ufffdb \ufffdc"
