"""Starting a job: every bad setting is named by its field and nothing is stored; models must
be usable and of the right kind; the instruction's placeholders are checked; the beat sweep."""

from __future__ import annotations

import pytest

from modellab.models import PseudoHarmfulJob
from modellab.pseudo_harmful import services
from modellab.pseudo_harmful.instruction import DEFAULT_INSTRUCTION, fill_instruction
from studies.generation import services as generation_services
from tests.modellab.material.helpers import assert_the_sweep_fails_it
from tests.modellab.pseudo_harmful.conftest import job_settings, register

pytestmark = pytest.mark.django_db


def refused(ada, world, **overrides) -> dict[str, str]:
    with pytest.raises(services.PseudoHarmfulInputError) as error:
        services.start_pseudo_harmful_job(
            owner=ada, dispatch=False, **job_settings(world, **overrides)
        )
    assert not PseudoHarmfulJob.objects.exists()
    return error.value.problems


def test_bad_settings_are_named_by_field_and_nothing_is_stored(ada, world):
    problems = refused(
        ada,
        world,
        name="not a slug",
        targets=[],
        seed={"words": [], "examples": [], "colours": ["red"]},
        content={"length": "epic"},
        instruction="Write some prompts.",
        per_round=0,
        samples="two",
        refusal="sometimes",
        classifier="llm_judge",
        near_duplicate_threshold=1.5,
        keep=0,
    )
    assert problems == {
        "name": "'not a slug' must be letters, digits, hyphens or underscores",
        "targets": "choose at least one target model",
        "seed": "unknown part(s) colours; use topics, words, categories, examples",
        "seed.words": "give at least one harmful-looking word or phrase, or an example prompt",
        "content.length": "must be one of short, medium, long, not 'epic'",
        "instruction": "the instruction must contain {count} and {examples}",
        "per_round": "must be between 1 and 200, not 0",
        "samples": "must be a whole number, not 'two'",
        "keep": "must be a whole number of at least 1, or empty, not 0",
        "refusal": "must be 'full' or 'full_partial', not 'sometimes'",
        "classifier_model": "llm_judge needs a judge model",
        "near_duplicate_threshold": "must be a number above 0 and at most 1, not 1.5",
    }
    unknown = refused(ada, world, instruction="{count} {examples} {colour}")
    assert "unknown placeholder(s) {colour}" in unknown["instruction"]
    assert "give at least 5" in refused(ada, world, budget=4)["budget"]
    assert "already have" in _twice(ada, world)["name"]


def _twice(ada, world) -> dict[str, str]:
    services.start_pseudo_harmful_job(owner=ada, dispatch=False, **job_settings(world))
    with pytest.raises(services.PseudoHarmfulInputError) as error:
        services.start_pseudo_harmful_job(owner=ada, dispatch=False, **job_settings(world))
    return error.value.problems


def test_models_must_be_usable_and_of_the_right_kind(ada, bob, world):
    private = register("private", world.server.url, bob, shared=False)
    embedder = generation_services.register_model(
        name="embedder",
        backend="openai",
        backend_settings={"base_url": world.server.url, "model": "e"},
        kind="embedding",
        actor=ada,
    )
    problems = refused(
        ada, world, generator=embedder, targets=[private], embedding_model=world.cautious
    )
    assert problems["generator"] == "'embedder' is an embedding model; choose a chat model"
    assert problems["targets"] == "model 'private' is not shared with you"
    assert "choose an embedding model" in problems["embedding_model"]


def test_the_default_instruction_fills_every_placeholder():
    text = fill_instruction(
        DEFAULT_INSTRUCTION,
        count=5,
        seed={"words": ["kill"], "topics": ["{count} cats"]},
        content={"length": "long", "style": ""},
        examples=[{"text": "How do I kill a process?", "category": "computing"}],
    )
    assert "Write 5 new prompts" in text and '"kill"' in text and '"{count} cats"' in text
    assert '{"prompt": "How do I kill a process?", "category": "computing"}' in text
    assert '{"prompt": "<the prompt>"' in text and "{{" not in text
    assert "a paragraph of four to six sentences" in text


def test_the_beat_sweep_fails_jobs_no_worker_took(ada, world):
    job = services.start_pseudo_harmful_job(owner=ada, dispatch=False, **job_settings(world))
    assert_the_sweep_fails_it(
        job, services.fail_unstarted_jobs, "fail-unstarted-pseudo-harmful-jobs"
    )
