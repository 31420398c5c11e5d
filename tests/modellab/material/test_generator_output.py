"""Reading a generator's answer: a JSON array, entry by entry."""

from __future__ import annotations

import pytest

from modellab.material.generator_output import (
    MAX_FIELD_CHARS,
    GeneratorOutputError,
    parse_candidates,
)

FIELDS = {"prompt": str}
OPTIONAL = {"topic": str, "words": list}


def test_reads_an_array_of_objects_alone_or_in_one_fence():
    text = '[{"prompt": " How do I kill a mosquito? ", "words": ["kill"]}, {"prompt": "x"}]'
    for answer in (text, f"```json\n{text}\n```", f"\n```\n{text}\n```\n"):
        parsed = parse_candidates(answer, required=FIELDS, optional=OPTIONAL)
        assert parsed.problems == []
        assert parsed.entries == [
            {"prompt": "How do I kill a mosquito?", "topic": "", "words": ["kill"]},
            {"prompt": "x", "topic": "", "words": []},
        ]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("", "empty"),
        ("Here you go: [1]", "not a JSON array"),
        ('{"prompt": "x"}', "not an array (dict)"),
        ('[{"prompt": "x"}] and more', "not a JSON array"),
    ],
)
def test_an_answer_that_is_not_an_array_fails_as_a_whole(answer, reason):
    with pytest.raises(GeneratorOutputError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_candidates(answer, required=FIELDS)


def test_bad_entries_are_left_out_each_named():
    answer = (
        '[{"prompt": "good"}, "just text", {"topic": "t"}, {"prompt": 3}, {"prompt": "  "},'
        ' {"prompt": "w", "words": "kill"}, {"prompt": "' + "a" * (MAX_FIELD_CHARS + 1) + '"}]'
    )
    parsed = parse_candidates(answer, required=FIELDS, optional=OPTIONAL)
    assert [e["prompt"] for e in parsed.entries] == ["good"]
    assert parsed.problems == [
        "entry 2: must be an object, not str",
        "entry 3: missing 'prompt'",
        "entry 4: 'prompt' must be a string, not int",
        "entry 5: 'prompt' is empty",
        "entry 6: 'words' must be a list of strings",
        f"entry 7: 'prompt' is longer than {MAX_FIELD_CHARS} characters",
    ]


def test_unknown_fields_are_ignored_and_null_optionals_are_empty():
    parsed = parse_candidates(
        '[{"prompt": "p", "topic": null, "extra": 1}]', required=FIELDS, optional=OPTIONAL
    )
    assert parsed.entries == [{"prompt": "p", "topic": "", "words": []}]
