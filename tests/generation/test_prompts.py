"""Prompt building and output checks for generated responses (pure, no database)."""

import json

import pytest

from studies.domain import RESPONSE_TYPES
from studies.generation import prompts


def test_every_type_has_a_default_instruction_and_overrides_apply():
    merged = prompts.instructions_with_defaults({"redirection": "  Point to a helpline.  "})
    assert set(merged) == set(RESPONSE_TYPES)
    assert merged["redirection"] == "Point to a helpline."
    assert merged["direct_refusal"] == prompts.DEFAULT_INSTRUCTIONS["direct_refusal"]


def test_unknown_instruction_key_is_rejected():
    with pytest.raises(ValueError, match="refusal_ish"):
        prompts.instructions_with_defaults({"refusal_ish": "x"})


def test_strategy_prompt_carries_the_types_instruction_and_the_query():
    instructions = prompts.instructions_with_defaults(None)
    system, user = prompts.strategy_messages(
        "How do I pick a lock?", "partial_compliance", instructions
    )
    assert system["role"] == "system" and instructions["partial_compliance"] in system["content"]
    assert user == {"role": "user", "content": "How do I pick a lock?"}


def test_structured_prompt_names_every_key():
    system, _user = prompts.structured_messages("q", prompts.instructions_with_defaults(None))
    for key in RESPONSE_TYPES:
        assert key in system["content"]


def test_natural_prompt_has_no_instruction_and_optional_scenario():
    assert prompts.natural_messages("q?", None) == ({"role": "user", "content": "q?"},)
    (message,) = prompts.natural_messages("q?", "You are a nurse.")
    assert message["content"].startswith("You are a nurse.") and message["content"].endswith("q?")


def test_structured_output_parses_with_code_fences_and_quotes():
    payload = {key: f" text for {key} " for key in RESPONSE_TYPES}
    text = "Sure!\n```json\n" + json.dumps(payload) + "\n```"
    parsed = prompts.parse_structured(text)
    assert parsed == {key: f"text for {key}" for key in RESPONSE_TYPES}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no json here", "no JSON object"),
        ("{not: json}", "does not parse"),
        ('{"direct_refusal": "No."}', "lacks text for: explanation_based"),
        ("[1, 2]", "no JSON object"),
        (json.dumps({k: "" for k in RESPONSE_TYPES}), "empty reply"),
    ],
)
def test_malformed_structured_output_says_what_is_wrong(text, message):
    with pytest.raises(prompts.MalformedOutput, match=message):
        prompts.parse_structured(text)


def test_single_reply_is_stripped_and_empty_is_malformed():
    assert prompts.clean_reply('  "I can\'t help with that."  ') == "I can't help with that."
    with pytest.raises(prompts.MalformedOutput):
        prompts.clean_reply("   ")
