"""llm_judge against the loopback chat-completions server, answering from a script per item
(good answers, fenced ones, malformed ones, failed calls), and its strict parser."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import defaultdict

import pytest

from modellab.classifiers import build_classifier
from modellab.classifiers.base import ClassifierInput
from modellab.classifiers.judge import (
    JudgementError,
    JudgePromptError,
    LLMJudge,
    default_judge_prompt,
    parse_judgement,
    validate_judge_prompt,
)
from modellab.classifiers.labels import FIVE_WAY_LABELS, THREE_WAY_LABELS, UNPARSED, to_three_way
from studies.models import LanguageModel
from tests.generation.chat_server import ChatServer, RecordedRequest, Reply


def completion(content: str) -> Reply:
    """A chat-completions answer whose message is ``content``."""
    return Reply(
        json={
            "id": f"chatcmpl-{uuid.uuid4().hex[:8]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
        }
    )


def verdict(label: str, rationale: str = "because") -> str:
    return json.dumps({"label": label, "rationale": rationale})


class Script:
    """Answers each item's requests in turn from its own list (the item is found by its
    response text), so concurrent requests get the right answer whatever their order."""

    def __init__(self, answers: dict[str, list[str | Reply]]) -> None:
        self.answers = answers
        self.calls: dict[str, list[RecordedRequest]] = defaultdict(list)

    def __call__(self, request: RecordedRequest) -> Reply:
        first = request.body["messages"][0]["content"]
        found = re.search(r"<response>\n(.*?)\n</response>", first, re.S)
        key = found[1] if found else first
        self.calls[key].append(request)
        answer = self.answers[key][len(self.calls[key]) - 1]
        return answer if isinstance(answer, Reply) else completion(answer)


@pytest.fixture
def judge_with():
    servers = []

    def make(answers: dict[str, list[str | Reply]], **kwargs) -> tuple[LLMJudge, Script]:
        script = Script(answers)
        server = ChatServer(handler=script).__enter__()
        servers.append(server)
        model = LanguageModel(
            name="judge",
            backend="openai",
            backend_settings={"base_url": server.url, "model": "m", "max_retries": 0},
            seed=7,
        )
        kwargs.setdefault("scheme", "three_way")
        return build_classifier("llm_judge", judge_model=model, **kwargs), script

    yield make
    for server in servers:
        server.__exit__(None, None, None)


def items(*responses: str) -> list[ClassifierInput]:
    return [ClassifierInput(prompt=f"request {i}", response=r) for i, r in enumerate(responses)]


def test_good_answers_are_labels_asked_at_temperature_zero_with_the_definitions(judge_with):
    judge, script = judge_with(
        {
            "no.": [verdict("full_refusal", "It declines.")],
            "sure, here": [
                '  ```json\n{"label": "full_compliance", "rationale": "Does it."}\n```\n'
            ],
            "in general": ['\n{"rationale": "Vague.", "label": "partial_refusal"}  '],
        }
    )
    results = judge.classify(items("no.", "sure, here", "in general"))
    assert [r.label for r in results] == ["full_refusal", "full_compliance", "partial_refusal"]
    assert [r.rationale for r in results] == ["It declines.", "Does it.", "Vague."]
    assert all(r.attempts == 1 for r in results)
    assert results[0].raw == verdict("full_refusal", "It declines.")
    [request] = script.calls["no."]
    assert request.body["temperature"] == 0 and request.body["seed"] == 7
    [message] = request.body["messages"]
    assert message["role"] == "user"
    text = message["content"]
    assert "<request>\nrequest 0\n</request>" in text and "<response>\nno.\n</response>" in text
    assert "partial_refusal: anything in between" in text
    assert "one of: full_compliance, full_refusal, partial_refusal" in text


@pytest.mark.parametrize(
    "malformed, problem",
    [
        ("It is a full refusal.", "not one JSON object"),
        ('Sure! {"label": "full_refusal", "rationale": "x"}', "not one JSON object"),
        ('{"label": "Full refusal", "rationale": "x"}', "'Full refusal' is not one of"),
        ('{"label": "direct_refusal", "rationale": "x"}', "'direct_refusal' is not one of"),
        ('{"label": "full_refusal"}', "missing 'rationale'"),
        (
            '{"label": "full_refusal", "rationale": "x", "confidence": 0.9}',
            "unexpected 'confidence'",
        ),
        ('{"label": "full_refusal", "rationale": "   "}', "non-empty string"),
        ('{"label": "full_refusal", "rationale": 3}', "non-empty string"),
        ('{"label": "x", "label": "full_refusal", "rationale": "r"}', "'label' appear twice"),
        ('["full_refusal", "x"]', "not an object"),
        ('```json\n{"label": "full_refusal", "rationale": "x"}\n```\n```\n{}\n```', "not one"),
        ("", "empty"),
    ],
)
def test_a_malformed_answer_is_asked_again_with_the_reason(judge_with, malformed, problem):
    judge, script = judge_with(
        {
            "bad first": [malformed, verdict("full_refusal", "Declines.")],
            "fine": [verdict("full_compliance")],
        }
    )
    bad, fine = judge.classify(items("bad first", "fine"))
    assert (bad.label, bad.rationale, bad.attempts) == ("full_refusal", "Declines.", 2)
    assert (fine.label, fine.attempts) == ("full_compliance", 1)
    assert len(script.calls["fine"]) == 1  # only the failed item is asked again
    retry = script.calls["bad first"][1].body["messages"]
    assert [m["role"] for m in retry] == ["user", "assistant", "user"]
    assert retry[0] == script.calls["bad first"][0].body["messages"][0]
    assert retry[1]["content"] == malformed
    assert "could not be read" in retry[2]["content"] and problem in retry[2]["content"]


def test_after_the_last_attempt_the_item_is_unparsed_with_its_raw_answer(judge_with):
    judge, script = judge_with(
        {
            "never": ["nope", '{"label": "maybe", "rationale": "x"}', "I think full refusal"],
            "ok": [verdict("partial_refusal")],
        },
        max_attempts=3,
    )
    never, ok = judge.classify(items("never", "ok"))
    assert never.label == UNPARSED and never.attempts == 3
    assert never.raw == "I think full refusal"
    assert never.rationale.startswith("no readable answer after 3 attempt(s); last problem:")
    assert "not one JSON object" in never.rationale
    assert ok.label == "partial_refusal"
    assert len(script.calls["never"]) == 3 and len(script.calls["ok"]) == 1


def test_failed_calls_are_retried_and_then_unparsed(judge_with):
    error = Reply(status=400, json={"error": {"message": "context too long"}})
    judge, script = judge_with(
        {"flaky": [error, verdict("full_refusal")], "down": [error, error]}, max_attempts=2
    )
    flaky, down = judge.classify(items("flaky", "down"))
    assert (flaky.label, flaky.attempts) == ("full_refusal", 2)
    assert down.label == UNPARSED and down.raw == ""
    assert "the model call failed: HTTP 400" in down.rationale
    # A failed call is asked again as it was (there is no answer to show back).
    assert len(script.calls["down"][1].body["messages"]) == 1


def test_five_way_labels_and_their_three_way_mapping(judge_with):
    answers = {f"response {label}": [verdict(label)] for label in FIVE_WAY_LABELS}
    judge, script = judge_with(answers, scheme="five_way")
    results = judge.classify(items(*answers))
    assert [r.label for r in results] == list(FIVE_WAY_LABELS)
    assert [to_three_way(r.label) for r in results] == [
        "full_refusal",
        "full_refusal",
        "partial_refusal",
        "partial_refusal",
        "full_compliance",
    ]
    text = script.calls["response redirection"][0].body["messages"][0]["content"]
    assert "explanation_based: the assistant declines and says why" in text
    assert f"one of: {', '.join(FIVE_WAY_LABELS)}" in text


def test_a_custom_prompt_is_used_and_placeholders_fill_once(judge_with):
    prompt = (
        "Q: {prompt}\n<response>\n{response}\n</response>\nLabels: {labels}. "
        'Reply {"label": ..., "rationale": ...}'
    )
    judge, script = judge_with(
        {"it says {prompt} here": [verdict("full_compliance")]}, judge_prompt=prompt
    )
    [result] = judge.classify([ClassifierInput(prompt="why?", response="it says {prompt} here")])
    assert result.label == "full_compliance"
    sent = script.calls["it says {prompt} here"][0].body["messages"][0]["content"]
    assert sent == (
        "Q: why?\n<response>\nit says {prompt} here\n</response>\n"
        "Labels: full_compliance, full_refusal, partial_refusal. "
        'Reply {"label": ..., "rationale": ...}'
    )


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("Judge this: {response}", r"must contain \{prompt\}"),
        ("Judge this.", r"must contain \{prompt\} and \{response\}"),
        ("{prompt} {response} {respons}", r"unknown placeholder\(s\) \{respons\}"),
        ("   ", "empty"),
    ],
)
def test_a_custom_prompt_without_its_placeholders_is_a_clear_error(prompt, message):
    with pytest.raises(JudgePromptError, match=message):
        validate_judge_prompt(prompt)
    model = LanguageModel(name="j", backend="openai", backend_settings={})
    with pytest.raises(ValueError, match=message):
        build_classifier("llm_judge", scheme="three_way", judge_model=model, judge_prompt=prompt)


def test_default_prompts_are_valid_and_name_every_label():
    for scheme, labels in (("three_way", THREE_WAY_LABELS), ("five_way", FIVE_WAY_LABELS)):
        prompt = default_judge_prompt(scheme)
        assert validate_judge_prompt(prompt) == prompt
        for label in labels:
            assert f"- {label}:" in prompt
    with pytest.raises(ValueError, match="scheme must be one of"):
        default_judge_prompt("two_way")


def test_max_attempts_is_checked():
    model = LanguageModel(name="j", backend="openai", backend_settings={})
    for bad in (0, 11, True, "3"):
        with pytest.raises(ValueError, match="max_attempts must be a whole number"):
            build_classifier("llm_judge", scheme="three_way", judge_model=model, max_attempts=bad)


def test_parse_judgement_strictness():
    assert parse_judgement('{"label": "full_refusal", "rationale": " r "}', "three_way") == (
        "full_refusal",
        "r",
    )
    assert parse_judgement('```\n{"label": "redirection", "rationale": "r"}\n```', "five_way")[
        0
    ] == ("redirection")
    for text in ('```python\n{"label": "full_refusal", "rationale": "r"}\n```', "null", "{}"):
        with pytest.raises(JudgementError):
            parse_judgement(text, "three_way")


def test_a_local_transformers_model_as_judge_gives_unparsed_with_its_raw_text(tmp_path):
    """Any registry model can judge: a tiny random-weight local model answers noise, which is
    asked again once with the reason and then kept as unparsed, raw text included."""
    from tests.generation.tiny_model import build_tiny_chat_model

    path = build_tiny_chat_model(tmp_path / "tiny")
    model = LanguageModel(
        name="tiny-judge",
        backend="transformers",
        backend_settings={"path": str(path), "device": "cpu"},
    )
    judge = LLMJudge(
        model=model,
        scheme="three_way",
        prompt="{prompt} / {response}",
        max_attempts=2,
        max_tokens=6,
    )
    results = judge.classify(items("Sure, here it is.", "I can't help with that."))
    assert [r.label for r in results] == [UNPARSED, UNPARSED]
    for result in results:
        assert result.attempts == 2 and result.raw
        assert result.rationale.startswith("no readable answer after 2 attempt(s)")
