"""The material judges: intent of a query in its scenario, harmfulness of a prompt."""

from __future__ import annotations

import json

import pytest

from modellab.classifiers.labels import HARMFULNESS, INTENT, UNPARSED
from modellab.material.judges import (
    MaterialJudge,
    MaterialJudgePromptError,
    default_prompt,
    fill_prompt,
    validate_prompt,
)
from studies.generation.backends import ChatOutcome
from studies.models import LanguageModel


class ScriptedBackend:
    """Answers each request with the next scripted text; records every request."""

    preferred_batch_size = 8

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests = []

    def generate(self, requests):
        self.requests.extend(requests)
        return [ChatOutcome(text=self.answers.pop(0)) for _ in requests]


def judge(scheme, answers, **kwargs):
    backend = ScriptedBackend(answers)
    model = LanguageModel(name="judge", backend="openai", seed=7)
    return MaterialJudge(model=model, scheme=scheme, backend=backend, **kwargs), backend


def answer(label, rationale="because"):
    return json.dumps({"label": label, "rationale": rationale})


def test_intent_judge_fills_scenario_and_query_and_reads_the_label():
    j, backend = judge(INTENT, [answer("malicious", "wants to hurt a coworker")])
    [result] = j.label([{"scenario": "You are angry at {query} your coworker.", "query": "Q?"}])
    assert (result.label, result.rationale) == ("malicious", "wants to hurt a coworker")
    sent = backend.requests[0]
    content = sent.messages[0]["content"]
    assert "You are angry at {query} your coworker." in content  # a brace in a text stays
    assert "<request>\nQ?\n</request>" in content
    assert "benign, malicious, ambiguous" in content
    assert sent.temperature == 0.0 and sent.seed == 7


def test_harmfulness_judge_retries_a_bad_answer_then_gives_up_as_unparsed():
    j, backend = judge(
        HARMFULNESS,
        ["Sure! harmless", answer("safe"), answer("harmless"), "no", "no", "no"],
        max_attempts=3,
    )
    first, second = j.label([{"prompt": "How do I kill a mosquito?"}, {"prompt": "p2"}])
    # Attempt 1: prose and an unknown label; attempt 2: "harmless" for the first, "no" for the
    # second; attempt 3: the second again "no" (one answer is left over, never asked).
    assert (first.label, first.attempts) == ("harmless", 2)
    assert second.label == UNPARSED and second.raw == "no"
    assert "no readable answer after 3 attempt(s)" in second.rationale
    assert len(backend.requests) == 5
    # A retry shows the model its own answer and why it could not be read.
    retry = backend.requests[2].messages
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert "could not be read" in retry[2]["content"]


def test_prompts_are_validated_per_scheme():
    assert validate_prompt(default_prompt(INTENT), INTENT)
    assert validate_prompt(default_prompt(HARMFULNESS), HARMFULNESS)
    with pytest.raises(MaterialJudgePromptError, match=r"must contain \{scenario\}"):
        validate_prompt("Judge {query}", INTENT)
    with pytest.raises(MaterialJudgePromptError, match=r"unknown placeholder\(s\) \{response\}"):
        validate_prompt("Judge {prompt} and {response}", HARMFULNESS)
    with pytest.raises(MaterialJudgePromptError, match="empty"):
        validate_prompt("  ", INTENT)
    with pytest.raises(ValueError, match="scheme must be one of"):
        default_prompt("three_way")


def test_an_edited_prompt_is_used_and_a_blank_one_means_the_default():
    j, backend = judge(HARMFULNESS, [answer("controversial")], prompt="Rate {prompt} as {labels}")
    j.label([{"prompt": "P"}])
    assert backend.requests[0].messages[0]["content"] == (
        "Rate P as harmless, controversial, harmful"
    )
    blank, _ = judge(HARMFULNESS, [], prompt="  ")
    assert blank.prompt == default_prompt(HARMFULNESS)
    assert fill_prompt("{prompt}{x}", {"prompt": "a"}, HARMFULNESS) == "a{x}"
