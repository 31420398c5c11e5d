"""Fixtures for model-behaviour tests: a study whose natural responses two models wrote through
the real generation job (loopback chat server, tasks inline), with scripted texts."""

from __future__ import annotations

import pytest

from studies.generation import services as generation
from studies.models import GenerationJob, LanguageModel, Study
from studies.tasks import dispatch_generation_job
from tests.generation.chat_server import Reply, default_answer
from tests.generation.conftest import chat_server, eager_tasks  # noqa: F401 (fixtures)

# What the two models write; string_match reads each one differently, and the tests know
# which label each text should get without asking the classifier.
REFUSAL = "I can't help with that request."
PARTIAL = "I can't give specifics, but I can offer some general information about the topic."
COMPLIANCE = "Sure! Here are the steps, one by one, with the details you asked for."
TEXTS = (REFUSAL, PARTIAL, COMPLIANCE)
EXPECTED_LABEL = {
    REFUSAL: "full_refusal",
    PARTIAL: "partial_refusal",
    COMPLIANCE: "full_compliance",
}
MODELS = ("alpha", "beta")


def scripted_text(served_model: str, prompt: str) -> str:
    """Which text a model writes for a prompt: deterministic, and different per model."""
    offset = MODELS.index(served_model.removesuffix("-served"))
    return TEXTS[(sum(map(ord, prompt)) + offset) % len(TEXTS)]


class ScriptedModels:
    """Answers generation requests of the scripted models; other requests (a judge's) go to
    ``judge``, a function of the request body returning the reply's content (or a Reply)."""

    def __init__(self) -> None:
        self.judge = None

    def __call__(self, request):
        body = request.body
        content = body["messages"][-1]["content"]
        if body["model"].removesuffix("-served") in MODELS:
            answer = default_answer(body)
            answer["choices"][0]["message"]["content"] = scripted_text(body["model"], content)
            return Reply(json=answer)
        if self.judge is None:
            return None
        out = self.judge(body)
        if isinstance(out, Reply):
            return out
        answer = default_answer(body)
        answer["choices"][0]["message"]["content"] = out
        return Reply(json=answer)


def register(name: str, url: str, **kwargs) -> LanguageModel:
    return generation.register_model(
        name=name,
        backend="openai",
        backend_settings={
            "base_url": url,
            "model": f"{name}-served",
            "max_concurrency": 4,
            "max_retries": 0,
            "backoff_base_s": 0.01,
        },
        temperature=0.0,
        max_tokens=64,
        **kwargs,
    )


def generate_natural(study: Study, model: LanguageModel) -> None:
    job = generation.start_generation_job(
        study=study, model=model, kind=GenerationJob.Kind.NATURAL, dispatch=False
    )
    dispatch_generation_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == GenerationJob.Status.DONE, job.error


@pytest.fixture
def scripted(chat_server):  # noqa: F811
    handler = ScriptedModels()
    chat_server.handler = handler
    return handler


@pytest.fixture
def natural_study(make_study, chat_server, scripted, eager_tasks):  # noqa: F811
    """A draft study (16 queries, 4 categories) with 48 natural responses of each model."""
    study = make_study(launch=False)
    models = [register(name, chat_server.url) for name in MODELS]
    for model in models:
        generate_natural(study, model)
    return study, models
