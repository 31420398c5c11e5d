"""Pure parts of query–scenario generation: the instruction, the forms' text, the files."""

from __future__ import annotations

import json

import pytest

from modellab.query_scenarios import instruction
from modellab.query_scenarios.inputs import (
    InputFileError,
    categories_from_file,
    categories_from_text,
    examples_from_upload,
)


def test_default_instructions_are_valid_and_ask_for_the_design():
    new = instruction.default_instruction(instruction.NEW_QUERIES)
    scenarios = instruction.default_instruction(instruction.SCENARIOS_ONLY)
    assert instruction.validate_instruction(new, instruction.NEW_QUERIES) == new
    assert instruction.validate_instruction(scenarios, instruction.SCENARIOS_ONLY) == scenarios
    for text in (new, scenarios):
        assert "second person" in text and "differ as little as possible" in text
        assert '"benign_scenario", "malicious_scenario"' in text
    assert "ambiguous" in new and '"category"' in new and '"query_id"' in scenarios


def test_edited_instructions_keep_their_placeholders():
    with pytest.raises(instruction.InstructionError, match=r"must contain \{examples\}"):
        instruction.validate_instruction("{count} {categories}", instruction.NEW_QUERIES)
    with pytest.raises(instruction.InstructionError, match=r"unknown placeholder\(s\) \{topic\}"):
        instruction.validate_instruction(
            "{count} {categories} {examples} {topic}", instruction.NEW_QUERIES
        )
    with pytest.raises(instruction.InstructionError, match="empty"):
        instruction.validate_instruction("  ", instruction.SCENARIOS_ONLY)


def test_filling_is_one_pass_and_examples_are_json_lines():
    text = instruction.fill_instruction(
        "{count}: {examples}", {"count": "3", "examples": "{count}"}
    )
    assert text == "3: {count}"
    lines = instruction.describe_examples([{"query": "q", "extra": 1}], ("query", "topic"))
    assert json.loads(lines) == {"query": "q", "topic": ""}
    assert instruction.describe_examples([], ("query",)) == "(none yet)"
    shown = instruction.describe_categories(
        [{"name": "privacy", "definition": "Private data.", "topics": ["a", "b"]}]
    )
    assert shown == "- privacy: Private data.\n  topics: a; b"


def test_categories_from_the_form_text():
    categories = categories_from_text(
        "privacy: Private data.\n\nDanger: Things that hurt.",
        "privacy: address; phone\ndanger: locks\nprivacy: email",
    )
    assert categories == [
        {"name": "privacy", "definition": "Private data.", "topics": ["address", "phone", "email"]},
        {"name": "Danger", "definition": "Things that hurt.", "topics": ["locks"]},
    ]
    with pytest.raises(InputFileError) as err:
        categories_from_text("privacy\nok: fine", "weapons: guns\nno colon")
    assert err.value.problems == [
        "categories, line 1: write it as 'name: definition'",
        "topics, line 1: no category named 'weapons' above",
        "topics, line 2: write it as 'category: topic; topic'",
    ]


def test_examples_from_csv_and_jsonl():
    csv = b"query_id,category,topic,query,benign_scenario,malicious_scenario\n1,c,t,q,b,m\n"
    assert examples_from_upload(csv, "seed.csv") == [
        {"category": "c", "topic": "t", "query": "q", "benign_scenario": "b",
         "malicious_scenario": "m"}
    ]  # fmt: skip
    assert examples_from_upload(b'{"query": "q"}\n', "x.jsonl")[0]["query"] == "q"
    assert examples_from_upload(b"  \n", "x.jsonl") == []
    with pytest.raises(InputFileError, match="line 1"):
        examples_from_upload(b"{not json\n", "x.jsonl")


def test_categories_from_a_file(tmp_path):
    array = tmp_path / "c.json"
    array.write_text(json.dumps([{"name": "a"}]), encoding="utf-8")
    assert categories_from_file(array) == [{"name": "a"}]
    lines = tmp_path / "c.jsonl"
    lines.write_text('{"name": "a"}\n\n{"name": "b"}\n', encoding="utf-8")
    assert [c["name"] for c in categories_from_file(lines)] == ["a", "b"]
    lines.write_text('{"name": "a"}\n{bad\n', encoding="utf-8")
    with pytest.raises(InputFileError, match="c.jsonl, line 2: not valid JSON"):
        categories_from_file(lines)
    array.write_text('{"name": "a"}', encoding="utf-8")
    with pytest.raises(InputFileError, match="must hold a JSON array"):
        categories_from_file(array)
    with pytest.raises(InputFileError, match="cannot read"):
        categories_from_file(tmp_path / "missing.json")
