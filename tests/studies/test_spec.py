"""Study spec files: loading, normalisation, round trip, and line-referenced errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studies.design import Design, Factor, RuleRow, check_design
from studies.domain import RESERVED_FACTOR_NAMES, RESPONSE_TYPES
from studies.spec import (
    QUESTION_TYPES,
    ScaleSpec,
    SpecError,
    SpecProblem,
    design_from_spec,
    dump_spec,
    load_spec,
    load_spec_data,
    load_spec_file,
    spec_dict,
)
from studies.spec.loader import TOP_LEVEL_KEYS
from studies.stimuli_file import read_stimuli_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SEED = EXAMPLES / "refusal-perception" / "study.yaml"
EVERY_TYPE = EXAMPLES / "every-type" / "study.yaml"

# Line numbers in the tests below refer to this text; edits keep the line count where they can.
BASE = """\
slug: tiny
title: Tiny study
consent: You agree.
instructions: Rate things.
target_participants: 10
items_per_participant: 4
completion:
  code: ABC
factors:
  - name: motivation
    levels: [benign, malicious]
    assignment: within
  - name: alignment
    levels: [aligned, misaligned]
    assignment: within
response_rule:
  - when: {motivation: benign, alignment: aligned}
    show: full_compliance
  - when: {motivation: malicious, alignment: misaligned}
    show: full_compliance
  - show: direct_refusal
questions:
  - key: helpful
    construct: affect
    text: It helped.
    scale: &s5
      points: 5
      anchors: {1: Not at all, 5: Very much}
attention_checks:
  - key: attention
    text: Pick 2.
    scale: *s5
    correct: 2
    after_item: 2
"""


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def error_of(text: str, source: str = "t.yaml") -> str:
    with pytest.raises(SpecError) as info:
        load_spec(text, source)
    return str(info.value)


def problems_of(text: str) -> list[SpecProblem]:
    with pytest.raises(SpecError) as info:
        load_spec(text)
    return info.value.problems


# --------------------------------------------------------------------------- good input


def test_base_normalises_with_defaults():
    spec = load_spec(BASE).to_dict()
    assert list(spec) == [k for k in TOP_LEVEL_KEYS if k != "stimuli"]
    assert spec["description"] == ""
    assert spec["time_limit_minutes"] == 60
    assert spec["completion"] == {"code": "ABC", "url": ""}
    assert spec["recruitment_params"] == {
        "participant": "PROLIFIC_PID",
        "study": "STUDY_ID",
        "session": "SESSION_ID",
    }
    assert spec["topic_choice"] is False
    assert spec["seed"] == 0
    assert spec["response_rule"][2] == {"when": {}, "show": "direct_refusal"}
    question = spec["questions"][0]
    assert question["reverse_coded"] is False
    assert question["required"] is True
    assert question["scale"] == {"points": 5, "anchors": {1: "Not at all", 5: "Very much"}}


def test_alias_is_expanded_for_every_use():
    spec = load_spec(BASE)
    assert spec.attention_checks[0].scale == spec.questions[0].scale
    # The plain dict shares no objects, so editing one scale cannot change another.
    plain = spec.to_dict()
    assert plain["attention_checks"][0]["scale"] is not plain["questions"][0]["scale"]


def test_merge_key_works():
    text = edit(
        "    scale: *s5\n    correct: 2",
        "    scale:\n      <<: *s5\n      points: 6\n    correct: 2",
    )
    spec = load_spec(text)
    assert spec.attention_checks[0].scale.points == 6


def test_examples_load_with_their_stimuli():
    seed, seed_stimuli = load_spec_file(SEED)
    seed = seed.to_dict()
    assert seed["slug"] == "refusal-perception"
    assert seed["topic_choice"] is True
    assert seed["items_per_participant"] == 8
    assert seed["target_participants"] == 480
    assert [q["key"] for q in seed["questions"]] == [
        "perceived_compliance",
        "request_alignment",
        "expectation",
        "appropriateness",
        "helpfulness",
        "transparency",
        "satisfaction",
        "frustration",
        "disturbance",
        "future_willingness",
    ]
    assert {q["key"] for q in seed["questions"] if q["reverse_coded"]} == {
        "frustration",
        "disturbance",
    }
    assert all(q["scale"]["points"] == 7 for q in seed["questions"])
    assert all(len(q["scale"]["anchors"]) == 7 for q in seed["questions"])
    assert [a["after_item"] for a in seed["attention_checks"]] == [3, 6]
    assert seed_stimuli == SEED.parent / "stimuli.csv"
    assert len(read_stimuli_file(seed_stimuli)) == 16

    every, every_stimuli = load_spec_file(EVERY_TYPE)
    assert every.slug == "every-type"
    assert every.topic_choice is False
    assert every_stimuli == seed_stimuli  # ../refusal-perception/stimuli.csv
    assert len(read_stimuli_file(every_stimuli)) == 16


def test_example_designs_pass_check_design():
    for path in (SEED, EVERY_TYPE):
        spec, _ = load_spec_file(path)
        assert check_design(design_from_spec(spec), RESPONSE_TYPES) == []


def test_design_from_spec():
    spec, _ = load_spec_file(SEED)
    design = design_from_spec(spec)
    assert isinstance(design, Design)
    assert design.items_per_participant == 8
    assert design.factors[2] == Factor(
        "refusal_strategy",
        ("direct_refusal", "explanation_based", "redirection", "partial_compliance"),
        "between",
    )
    assert design.rule[1] == RuleRow(
        when={"motivation": "malicious", "alignment": "aligned"}, show="$refusal_strategy"
    )
    assert [(a.key, a.after_item) for a in design.attention_checks] == [
        ("attention_1", 3),
        ("attention_2", 6),
    ]


@pytest.mark.parametrize("path", [SEED, EVERY_TYPE], ids=["seed", "every-type"])
def test_examples_round_trip(path):
    spec, _ = load_spec_file(path)
    text = dump_spec(spec)
    assert load_spec(text) == spec
    assert dump_spec(load_spec(text)) == text


def test_round_trip_of_base():
    spec = load_spec(BASE)
    assert load_spec(dump_spec(spec)) == spec


def test_dump_uses_canonical_order_and_literal_blocks():
    spec, _ = load_spec_file(SEED)
    shuffled = dict(reversed(list(spec.to_dict().items())))
    text = dump_spec(shuffled)
    top_keys = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    assert top_keys == list(TOP_LEVEL_KEYS)
    assert "consent: |" in text
    assert "&" not in text.replace("&amp;", "")  # no YAML anchors in exports


def test_json_is_accepted_and_anchor_keys_become_ints():
    spec = load_spec(BASE)
    as_json = json.dumps(spec.to_dict(), indent=2)  # JSON turns the anchor keys into "1", "5"
    assert '"1": "Not at all"' in as_json
    assert load_spec(as_json) == spec


def test_quoted_numeric_anchor_keys_are_normalised():
    spec = load_spec(edit("{1: Not at all, 5: Very much}", "{'1': Not at all, '5': Very much}"))
    assert spec.questions[0].scale == ScaleSpec(5, ((1, "Not at all"), (5, "Very much")))


def test_strings_are_stripped():
    spec = load_spec(edit("title: Tiny study", "title: '  Tiny study  '"))
    assert spec.title == "Tiny study"


def test_stimuli_is_kept_only_when_given():
    assert "stimuli" not in load_spec(BASE).to_dict()
    spec = load_spec(BASE + "stimuli: data/stimuli.csv\n")
    assert spec.stimuli == "data/stimuli.csv"
    assert list(spec.to_dict())[-1] == "stimuli"


@pytest.mark.parametrize(
    "key",
    [
        "description",
        "time_limit_minutes",
        "recruitment_params",
        "topic_choice",
        "seed",
        "blocks",
        "analysis",
        "stimuli",
    ],
)
def test_optional_top_level_field_given_as_null_takes_its_default(key):
    assert load_spec(BASE + f"{key}: null\n") == load_spec(BASE)


def test_stimuli_null_means_no_stimuli_file(tmp_path):
    (tmp_path / "study.yaml").write_text(BASE + "stimuli: null\n")
    spec, stimuli = load_spec_file(tmp_path / "study.yaml")
    assert spec.stimuli is None and stimuli is None
    assert "stimuli" not in spec.to_dict()


def test_nested_optional_fields_given_as_null_take_their_defaults():
    text = edit("  code: ABC", "  code: ABC\n  url: null")
    text = edit("    construct: affect", "    construct: null\n    reverse_coded: null", text)
    text = edit("    text: It helped.", "    text: It helped.\n    required: ~", text)
    text += "analysis:\n  reference_level: null\n  composites: null\nrecruitment_params:\n"
    text += "  study: null\n"
    spec = load_spec(text)
    base = load_spec(BASE)
    assert spec == dataclasses.replace(
        base, questions=(dataclasses.replace(base.questions[0], construct=""),)
    )
    # A rule row's when: null matches everything, like a row without when.
    no_when = edit("  - show: direct_refusal", "  - when: null\n    show: direct_refusal")
    assert load_spec(no_when) == base


def test_null_lists_are_empty():
    text = edit("      anchors: {1: Not at all, 5: Very much}", "      anchors: null")
    assert load_spec(text).questions[0].scale.anchors == ()
    text = BASE[: BASE.index("attention_checks:")] + "attention_checks: null\n"
    assert load_spec(text).attention_checks == ()


def test_empty_rule_allowed_with_response_type_factor():
    text = edit(
        """\
  - name: motivation
    levels: [benign, malicious]
    assignment: within
  - name: alignment
    levels: [aligned, misaligned]
    assignment: within
response_rule:
  - when: {motivation: benign, alignment: aligned}
    show: full_compliance
  - when: {motivation: malicious, alignment: misaligned}
    show: full_compliance
  - show: direct_refusal
""",
        """\
  - name: response_type
    levels: [direct_refusal, partial_compliance]
    assignment: within
  - name: motivation
    levels: [benign, malicious]
    assignment: between
""",
    )
    spec = load_spec(text)
    assert spec.response_rule == ()
    assert load_spec(dump_spec(spec)) == spec
    assert design_from_spec(spec).rule == ()


def test_load_spec_file_resolves_stimuli(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "s.csv").write_text("x")
    (tmp_path / "study.yaml").write_text(BASE + "stimuli: data/s.csv\n")
    spec, stimuli = load_spec_file(tmp_path / "study.yaml")
    assert stimuli == (tmp_path / "data" / "s.csv").resolve()
    assert spec.stimuli == "data/s.csv"


def test_load_spec_file_without_stimuli(tmp_path):
    (tmp_path / "study.yaml").write_text(BASE)
    assert load_spec_file(tmp_path / "study.yaml")[1] is None


# --------------------------------------------------------------------------- bad input


def test_problem_and_error_formatting():
    problem = SpecProblem("questions[2].scale.points", 14, "must be an integer between 2 and 11")
    assert str(problem) == "line 14, questions[2].scale.points: must be an integer between 2 and 11"
    assert str(SpecProblem("", 3, "oops")) == "line 3: oops"
    assert str(SpecProblem("title", None, "oops")) == "title: oops"
    error = SpecError([problem, SpecProblem("", 3, "oops")], "study.yaml")
    assert str(error).splitlines() == [
        "study.yaml: line 14, questions[2].scale.points: must be an integer between 2 and 11",
        "study.yaml: line 3: oops",
    ]


def test_missing_required_top_level_field():
    message = error_of(edit("title: Tiny study", "# no title"))
    assert "line 1, title: required field 'title' is missing" in message


def test_missing_required_nested_field():
    message = error_of(edit("    text: It helped.\n", "    # no text\n"))
    assert "line 23, questions[0].text: required field 'text' is missing" in message


def test_unknown_field_with_suggestion():
    message = error_of(edit("title: Tiny study", "titel: Tiny study"))
    assert "line 2, titel: unknown field 'titel'; did you mean 'title'?" in message


def test_unknown_nested_field_with_suggestion():
    message = error_of(edit("    construct: affect", "    construkt: affect"))
    assert (
        "line 24, questions[0].construkt: unknown field 'construkt'; did you mean 'construct'?"
        in message
    )


def test_quoted_integer_is_rejected():
    message = error_of(edit("target_participants: 10", 'target_participants: "10"'))
    assert (
        "line 5, target_participants: must be an integer of at least 1, found a string ('10')"
        in message
    )
    assert "remove the quotes" in message


def test_boolean_is_not_an_integer():
    message = error_of(edit("items_per_participant: 4", "items_per_participant: true"))
    assert "line 6, items_per_participant: must be an integer" in message
    assert "found a boolean (true)" in message


def test_float_is_not_an_integer():
    message = error_of(edit("items_per_participant: 4", "items_per_participant: 4.5"))
    assert "line 6, items_per_participant:" in message
    assert "found a number with a fraction (4.5)" in message


def test_string_is_not_a_boolean():
    message = error_of(edit("    construct: affect", "    reverse_coded: 'yes'"))
    assert "line 24, questions[0].reverse_coded: must be true or false, found a string" in message


def test_number_is_not_a_string():
    message = error_of(edit("title: Tiny study", "title: 42"))
    assert "line 2, title: must be a string, found an integer (42)" in message
    assert "quotes" in message


def test_yaml_boolean_label_gets_a_quoting_hint():
    message = error_of(edit("{1: Not at all, 5: Very much}", "{1: No, 5: Yes}"))
    assert "line 28, questions[0].scale.anchors.1: must be a string, found a boolean" in message
    assert "put it in quotes" in message


def test_wrong_container_type():
    message = error_of(edit("completion:\n  code: ABC", "completion: ABC\n#"))
    assert "line 7, completion: must be a mapping, found a string ('ABC')" in message


def test_empty_required_string():
    message = error_of(edit("consent: You agree.", "consent: '   '"))
    assert "line 3, consent: must not be empty" in message


def test_points_out_of_range():
    message = error_of(edit("      points: 5", "      points: 12"))
    assert (
        "line 27, questions[0].scale.points: must be an integer between 2 and 11, found 12"
        in message
    )
    # The attention check uses the same scale through the alias: reported at its use.
    assert "line 32, attention_checks[0].scale.points:" in message


def test_anchor_outside_scale():
    message = error_of(edit("5: Very much", "6: Very much"))
    assert "line 28, questions[0].scale.anchors.6: anchor 6 is outside the scale" in message


def test_anchor_key_not_a_number():
    message = error_of(edit("5: Very much", "top: Very much"))
    assert "line 28, questions[0].scale.anchors.top:" in message
    assert "must be a scale point" in message


def test_correct_answer_outside_scale():
    message = error_of(edit("    correct: 2", "    correct: 7"))
    assert (
        "line 33, attention_checks[0].correct: must be an integer between 1 and 5, found 7"
        in message
    )


def test_after_item_outside_items():
    message = error_of(edit("    after_item: 2", "    after_item: 5"))
    assert "line 34, attention_checks[0].after_item: must be an integer between 0 and 4" in message


def test_duplicate_question_key():
    text = edit(
        "attention_checks:",
        "  - key: helpful\n    text: Again.\n    scale: *s5\nattention_checks:",
    )
    message = error_of(text)
    assert "line 29, questions[1].key: key 'helpful' is already used by questions[0]" in message


def test_duplicate_key_between_question_and_attention_check():
    message = error_of(edit("  - key: attention", "  - key: helpful"))
    assert (
        "line 30, attention_checks[0].key: key 'helpful' is already used by questions[0]" in message
    )


def test_bad_question_key():
    message = error_of(edit("  - key: helpful", "  - key: Helpful Item"))
    assert "line 23, questions[0].key: must be a lowercase key" in message


@pytest.mark.parametrize("slug", ["Tiny", "tiny study", "-tiny", "tiny_study", "a" * 81])
def test_bad_slug(slug):
    message = error_of(edit("slug: tiny", f"slug: '{slug}'"))
    assert "line 1, slug: must" in message


@pytest.mark.parametrize("url", ["ftp://example.org/x", "javascript:alert(1)", "example.org"])
def test_bad_completion_url(url):
    message = error_of(edit("  code: ABC", f"  code: ABC\n  url: '{url}'"))
    assert "line 9, completion.url: must be an http:// or https:// URL" in message


def test_good_completion_url():
    spec = load_spec(edit("  code: ABC", "  code: ABC\n  url: https://example.org/done?cc=ABC"))
    assert spec.completion.url == "https://example.org/done?cc=ABC"


def test_bad_recruitment_param_name():
    text = edit("  code: ABC", "  code: ABC\nrecruitment_params:\n  participant: prolific pid")
    message = error_of(text)
    assert "line 10, recruitment_params.participant: must be a URL parameter name" in message


def test_unknown_response_type_in_rule():
    message = error_of(
        edit(
            "    show: full_compliance\n  - when: {motivation: malicious",
            "    show: ful_compliance\n  - when: {motivation: malicious",
        )
    )
    assert (
        "line 18, response_rule[0].show: 'ful_compliance' is not a response type; "
        "did you mean 'full_compliance'?" in message
    )


def test_rule_naming_unknown_factor():
    message = error_of(
        edit("{motivation: benign, alignment: aligned}", "{motivation: benign, alignmnt: aligned}")
    )
    assert (
        "line 17, response_rule[0].when.alignmnt: unknown factor 'alignmnt'; "
        "did you mean 'alignment'?" in message
    )


def test_rule_naming_unknown_level():
    message = error_of(
        edit(
            "{motivation: benign, alignment: aligned}", "{motivation: benigne, alignment: aligned}"
        )
    )
    assert (
        "line 17, response_rule[0].when.motivation: 'benigne' is not a level of factor "
        "'motivation'; did you mean 'benign'?" in message
    )


def test_rule_showing_unknown_factor():
    message = error_of(edit("  - show: direct_refusal", "  - show: $strategy"))
    assert "line 21, response_rule[2].show: '$strategy' names no factor" in message


def test_rule_showing_factor_whose_levels_are_not_types():
    message = error_of(edit("  - show: direct_refusal", "  - show: $alignment"))
    assert "line 21, response_rule[2].show:" in message
    assert "'aligned', 'misaligned' are not response types" in message


def test_uncovered_combination():
    message = error_of(edit("  - show: direct_refusal\n", "  # no fallback row\n"))
    assert (
        "line 16, response_rule: no response_rule row matches motivation=benign, "
        "alignment=misaligned" in message
    )


def test_empty_rule_without_response_type_factor():
    text = edit(
        """\
response_rule:
  - when: {motivation: benign, alignment: aligned}
    show: full_compliance
  - when: {motivation: malicious, alignment: misaligned}
    show: full_compliance
  - show: direct_refusal
""",
        "response_rule: []\n",
    )
    message = error_of(text)
    assert "line 16, response_rule: the response rule is empty" in message


def test_items_not_a_multiple_of_within_cells():
    message = error_of(edit("items_per_participant: 4", "items_per_participant: 6"))
    assert "line 6, items_per_participant: items_per_participant (6) must be a multiple" in message


def test_duplicate_factor_and_level():
    text = edit("    levels: [aligned, misaligned]", "    levels: [aligned, aligned]")
    assert "line 14, factors[1].levels[1]: level 'aligned' is listed twice" in error_of(text)
    text = edit("  - name: alignment", "  - name: motivation")
    assert "line 13, factors[1].name: factor 'motivation' is already defined" in error_of(text)


def test_bad_assignment_with_suggestion():
    message = error_of(
        edit("    assignment: within\nresponse_rule", "    assignment: withn\nresponse_rule")
    )
    assert (
        "line 15, factors[1].assignment: must be 'between' or 'within', found 'withn'; "
        "did you mean 'within'?" in message
    )


@pytest.mark.parametrize("name", sorted(RESERVED_FACTOR_NAMES))
def test_every_reserved_factor_name_is_refused_with_its_line(name):
    message = error_of(edit("  - name: alignment", f"  - name: {name}"))
    assert f"line 13, factors[1].name: '{name}' is a reserved name" in message
    assert f"the data export already has a column '{name}'" in message


def test_kind_as_a_factor_is_refused_with_the_reason():
    # The example: a factor named "kind" used to be accepted and break the export.
    message = error_of(edit("  - name: alignment", "  - name: kind"))
    assert (
        "factors[1].name: 'kind' is a reserved name: the data export already has a column "
        "'kind' (stimulus or attention (an attention check's row)); choose another name"
    ) in message


def test_motivation_and_response_type_stay_factor_names():
    text = edit("  - name: alignment", "  - name: response_type")
    text = edit("[aligned, misaligned]", "[direct_refusal, redirection]", text)
    text = text.replace("alignment: aligned", "response_type: direct_refusal").replace(
        "alignment: misaligned", "response_type: redirection"
    )
    spec = load_spec(text)
    assert [f.name for f in spec.factors] == ["motivation", "response_type"]


def test_motivation_levels_must_match_scenario_columns():
    message = error_of(edit("    levels: [benign, malicious]", "    levels: [benign, neutral]"))
    assert "line 11, factors[0].levels[1]: 'neutral' is not a motivation level" in message


def test_response_type_factor_levels_must_be_types():
    message = error_of(edit("  - name: alignment", "  - name: response_type"))
    assert "line 14, factors[1].levels[0]: 'aligned' is not a response type" in message


def test_no_questions():
    text = edit(BASE[BASE.index("questions:") : BASE.index("attention_checks:")], "questions: []\n")
    message = error_of(edit("    scale: *s5", "    scale: {points: 5}", text))
    assert "line 22, questions: must contain at least 1 question" in message


def test_yaml_syntax_error_has_line():
    message = error_of(edit("    text: It helped.", "    text: It: helped."))
    assert message.startswith("t.yaml: line 25: not valid YAML: mapping values are not allowed")


def test_unclosed_flow_sequence_has_line():
    message = error_of(edit("    levels: [benign, malicious]", "    levels: [benign, malicious"))
    assert "not valid YAML" in message
    assert "line 11" in message


def test_undefined_alias_is_a_yaml_error():
    message = error_of(edit("    scale: *s5", "    scale: *s7"))
    assert "line 32: not valid YAML: found undefined alias" in message


def test_duplicate_yaml_key():
    message = error_of(edit("consent: You agree.", "title: Other\nconsent: You agree."))
    assert "line 3, title: duplicate key 'title' (first on line 2)" in message


def test_empty_and_non_mapping_documents():
    assert "line 1: the spec is empty" in error_of("")
    assert "must be a mapping of fields" in error_of("- a\n- b\n")


def test_several_problems_are_reported_at_once_in_line_order():
    text = edit("slug: tiny", "slug: Tiny")
    text = edit("title: Tiny study", "titel: Tiny study", text)
    text = edit("      points: 5", "      points: 1", text)
    text = edit("    correct: 2", "    correct: 0", text)
    problems = problems_of(text)
    assert [(p.line, p.path) for p in problems] == [
        (1, "slug"),
        (1, "title"),
        (2, "titel"),
        (27, "questions[0].scale.points"),
        (32, "attention_checks[0].scale.points"),
        (33, "attention_checks[0].correct"),
    ]
    message = error_of(text, "study.yaml")
    assert len(message.splitlines()) == len(problems)
    assert all(line.startswith("study.yaml: line ") for line in message.splitlines())


def test_design_checks_are_skipped_while_structure_is_broken():
    # An unknown response type would also make check_design complain about every cell.
    text = edit("  - show: direct_refusal", "  - show: nonsense")
    problems = problems_of(text)
    assert [p.path for p in problems] == ["response_rule[2].show"]


def test_missing_stimuli_file_is_a_problem(tmp_path):
    (tmp_path / "study.yaml").write_text(BASE + "stimuli: nowhere.csv\n")
    with pytest.raises(SpecError) as info:
        load_spec_file(tmp_path / "study.yaml")
    assert "line 35, stimuli: file not found" in str(info.value)


def test_unreadable_spec_file(tmp_path):
    with pytest.raises(SpecError) as info:
        load_spec_file(tmp_path / "missing.yaml")
    assert "cannot read the file" in str(info.value)


# --------------------------------------------------------------------------- property


# Any text but what the spec refuses (test_unstorable_text_is_always_refused, below).
_UNSTORABLE = "".join(chr(c) for c in range(0x20) if chr(c) not in "\t\n\r")
_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=_UNSTORABLE),
    min_size=1,
    max_size=80,
).filter(lambda s: s.strip() == s and s != "")


@settings(max_examples=300, deadline=None)
@given(title=_text, consent=_text, label=_text)
def test_round_trip_of_arbitrary_text(title, consent, label):
    spec = spec_dict(load_spec(BASE))
    spec["title"] = title[:200]
    spec["consent"] = consent
    spec["questions"][0]["scale"]["anchors"][1] = label
    typed = load_spec_data(spec)
    assert typed.to_dict() == spec
    assert load_spec(dump_spec(typed)) == typed


@settings(max_examples=100, deadline=None)
@given(text=_text, bad=st.sampled_from(_UNSTORABLE + "\ud800\udfff"), at=st.integers(0, 80))
def test_unstorable_text_is_always_refused(text, bad, at):
    spec = spec_dict(load_spec(BASE))
    spec["questions"][0]["text"] = text[:at] + bad + text[at:]
    with pytest.raises(SpecError) as info:
        load_spec_data(spec)
    assert [p.path for p in info.value.problems] == ["questions[0].text"]


# --------------------------------------------------------------------------- analysis section


def test_analysis_defaults_and_composites_round_trip():
    spec = load_spec(BASE)
    assert spec.to_dict()["analysis"] == {
        "reference_level": "full_compliance",
        "baseline_level": "direct_refusal",
        "composites": [],
    }
    text = BASE + "analysis:\n  composites:\n    - {name: overall, items: [helpful]}\n"
    spec = load_spec(text)
    assert spec.to_dict()["analysis"]["composites"] == [{"name": "overall", "items": ["helpful"]}]
    assert load_spec(dump_spec(spec)) == spec


def test_analysis_problems_name_field_and_line():
    text = BASE + (
        "analysis:\n"  # line 35
        "  reference_level: full_complience\n"
        "  baseline_level: direct_refusal\n"
        "  composites:\n"
        "    - name: helpful\n"
        "      items: [helpfull]\n"
    )
    message = error_of(text)
    assert "line 36, analysis.reference_level" in message and "full_compliance" in message
    assert "line 39, analysis.composites[0].name" in message
    assert "line 40, analysis.composites[0].items[0]" in message and "'helpful'" in message


def test_reference_and_baseline_must_differ():
    text = BASE + "analysis:\n  reference_level: direct_refusal\n"
    assert "analysis.baseline_level: must differ" in error_of(text)


# --------------------------------------------------------------------------- blocks

BLOCKS = """\
blocks:
  - key: demographics
    title: About you
    intro: A few questions first.
    placement: before
    questions:
      - key: age_group
        type: single_choice
        text: What is your age group?
        options: ["18-24", "25-34", "35 or older"]
      - key: tools
        type: multiple_choice
        text: Which assistants have you used?
        required: false
        options: [ChatGPT, Claude, Other]
      - key: chatbot_days
        type: number
        text: On how many days last week did you use an AI chatbot?
        min: 0
        max: 7
  - key: final
    title: Before you go
    placement: after
    questions:
      - key: comment
        type: free_text
        text: Anything else?
        required: false
      - key: ai_trust
        text: I trust AI assistants.
        scale: {points: 5, anchors: {1: Not at all, 5: Completely}}
"""
# BASE has 34 lines, so BLOCKS' line n is line 34 + n of the spec.


def block_error(old: str, new: str) -> str:
    return error_of(BASE + edit(old, new, BLOCKS))


def test_blocks_load_typed_with_defaults():
    spec = load_spec(BASE + BLOCKS)
    demographics, final = spec.blocks
    assert (demographics.key, demographics.placement, demographics.intro) == (
        "demographics",
        "before",
        "A few questions first.",
    )
    assert final.intro == "" and final.placement == "after"
    age, tools, days = demographics.questions
    assert age.type == "single_choice" and age.options == ("18-24", "25-34", "35 or older")
    assert age.required is True and tools.required is False
    assert (days.min, days.max) == (0, 7)
    comment, trust = final.questions
    assert comment.type == "free_text" and comment.max_length == 1000
    assert trust.type == "likert" and trust.scale == ScaleSpec(
        5, ((1, "Not at all"), (5, "Completely"))
    )
    keys = ("age_group", "tools", "chatbot_days", "comment", "ai_trust")
    assert spec.question_keys()[-5:] == keys


def test_blocks_dict_has_only_each_types_fields_and_round_trips():
    spec = load_spec(BASE + BLOCKS)
    plain = spec.to_dict()["blocks"]
    assert plain[0]["questions"][0] == {
        "key": "age_group",
        "type": "single_choice",
        "text": "What is your age group?",
        "required": True,
        "options": ["18-24", "25-34", "35 or older"],
    }
    assert plain[1]["questions"][0] == {
        "key": "comment",
        "type": "free_text",
        "text": "Anything else?",
        "required": False,
        "max_length": 1000,
    }
    text = dump_spec(spec)
    assert load_spec(text) == spec
    assert dump_spec(load_spec(text)) == text
    assert load_spec_data(spec_dict(spec)) == spec


def test_decimal_number_bounds_are_kept():
    bounds = edit("        min: 0\n        max: 7", "        min: -0.5\n        max: 7.5", BLOCKS)
    spec = load_spec(BASE + bounds)
    days = spec.blocks[0].questions[2]
    assert (days.min, days.max) == (-0.5, 7.5)
    assert load_spec(dump_spec(spec)) == spec


def test_number_without_bounds_is_open():
    spec = load_spec(BASE + edit("        min: 0\n        max: 7\n", "", BLOCKS))
    days = spec.blocks[0].questions[2]
    assert (days.min, days.max) == (None, None)
    assert load_spec(dump_spec(spec)) == spec


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "        type: single_choice",
            "        type: single_choise",
            "line 42, blocks[0].questions[0].type: 'single_choise' is not a question type; "
            "did you mean 'single_choice'?",
        ),
        (
            "        required: false\n        options: [ChatGPT, Claude, Other]",
            "        required: false\n        options: [ChatGPT]",
            "line 49, blocks[0].questions[1].options: must contain at least 2 options",
        ),
        (
            "[ChatGPT, Claude, Other]",
            "[ChatGPT, Claude, ChatGPT]",
            "line 49, blocks[0].questions[1].options[2]: option 'ChatGPT' is listed twice",
        ),
        (
            "[ChatGPT, Claude, Other]",
            "[ChatGPT, '  ']",
            "line 49, blocks[0].questions[1].options[1]: must not be empty",
        ),
        (
            "        required: false\n        options: [ChatGPT, Claude, Other]",
            "        required: false",
            "line 45, blocks[0].questions[1].options: required field 'options' is missing",
        ),
        (
            "        min: 0\n        max: 7",
            "        min: 8\n        max: 7",
            "line 54, blocks[0].questions[2].max: must be at least min (8), found 7",
        ),
        (
            "        min: 0",
            "        min: '0'",
            "line 53, blocks[0].questions[2].min: must be a number, found a string ('0'); "
            "remove the quotes",
        ),
        (
            "        text: Anything else?\n",
            "        text: Anything else?\n        max_length: 0\n",
            "line 62, blocks[1].questions[0].max_length: must be an integer between 1 and 10000, "
            "found 0",
        ),
        (
            "        text: Anything else?\n",
            "        text: Anything else?\n        max_length: 10001\n",
            "line 62, blocks[1].questions[0].max_length: must be an integer between 1 and 10000",
        ),
        (
            "        text: Anything else?\n",
            "        text: Anything else?\n        options: [a, b]\n",
            "line 62, blocks[1].questions[0].options: options is only for single_choice and "
            "multiple_choice questions",
        ),
        (
            "        min: 0\n",
            "        min: 0\n        scale: {points: 5}\n",
            "line 54, blocks[0].questions[2].scale: scale is only for likert questions",
        ),
        (
            "        text: What is your age group?\n",
            "        text: What is your age group?\n        max_length: 20\n",
            "line 44, blocks[0].questions[0].max_length: max_length is only for free_text "
            "questions",
        ),
        (
            "        scale: {points: 5, anchors: {1: Not at all, 5: Completely}}",
            "        scale: {points: 12}",
            "line 65, blocks[1].questions[1].scale.points: must be an integer between 2 and 11",
        ),
        (
            "        scale: {points: 5, anchors: {1: Not at all, 5: Completely}}",
            "        scale: {points: 3, anchors: {5: Completely}}",
            "line 65, blocks[1].questions[1].scale.anchors.5: anchor 5 is outside the scale",
        ),
        (
            "        text: I trust AI assistants.\n"
            "        scale: {points: 5, anchors: {1: Not at all, 5: Completely}}\n",
            "        text: I trust AI assistants.\n",
            "line 63, blocks[1].questions[1].scale: required field 'scale' is missing",
        ),
        (
            "      - key: comment",
            "      - key: helpful",
            "line 59, blocks[1].questions[0].key: key 'helpful' is already used by questions[0]",
        ),
        (
            "      - key: ai_trust",
            "      - key: age_group",
            "line 63, blocks[1].questions[1].key: key 'age_group' is already used by "
            "blocks[0].questions[0]",
        ),
        (
            "      - key: ai_trust",
            "      - key: attention",
            "line 63, blocks[1].questions[1].key: key 'attention' is already used by "
            "attention_checks[0]",
        ),
        (
            "  - key: final",
            "  - key: demographics",
            "line 55, blocks[1].key: block 'demographics' is already defined at blocks[0]",
        ),
        (
            "    placement: after",
            "    placement: afterwards",
            "line 57, blocks[1].placement: must be 'before' or 'after' (the rated items), "
            "found 'afterwards'; did you mean 'after'?",
        ),
        (
            "    title: Before you go\n",
            "    title: Before you go\n    intro_md: Hi\n",
            "line 57, blocks[1].intro_md: unknown field 'intro_md'; did you mean 'intro'?",
        ),
        (
            "  - key: final",
            "  - key: Final",
            "line 55, blocks[1].key: must be a lowercase identifier",
        ),
    ],
)
def test_block_problems_name_line_and_field(old, new, expected):
    assert expected in block_error(old, new)


def test_block_without_questions_and_title():
    text = BASE + "blocks:\n  - key: empty\n    placement: before\n    questions: []\n"
    message = error_of(text)
    assert "line 36, blocks[0].title: required field 'title' is missing" in message
    assert "line 38, blocks[0].questions: must contain at least 1 question" in message


def test_item_questions_take_no_type():
    message = error_of(edit("    construct: affect", "    construct: affect\n    type: likert"))
    assert (
        "line 25, questions[0].type: unknown field 'type': questions under each item are Likert; "
        "put other question types in a questionnaire block" in message
    )


def test_examples_readme_documents_every_field_type_and_reserved_name():
    from studies.spec.loader import ALL_BLOCK_QUESTION_KEYS, BLOCK_KEYS, BLOCK_QUESTION_KEYS

    readme = (EXAMPLES / "README.md").read_text()
    for key in TOP_LEVEL_KEYS:
        assert f"`{key}" in readme, key
    for key in BLOCK_KEYS:
        assert f"`blocks[].{key}`" in readme, key
    for key in BLOCK_QUESTION_KEYS:
        assert f"`blocks[].questions[].{key}`" in readme, key
    for key in set(ALL_BLOCK_QUESTION_KEYS) - set(BLOCK_QUESTION_KEYS):
        assert f"`{key}" in readme, key
    for kind in QUESTION_TYPES:
        assert f"| `{kind}` |" in readme, kind
    for name in RESERVED_FACTOR_NAMES:
        assert f"`{name}`" in readme, name


# --------------------------------------------------------------------------- unstorable text
# A NUL cannot be stored by PostgreSQL (text or JSON); YAML's "\0" and JSON's "\u0000" escapes
# produce one from a file that is otherwise valid. The spec names its line and field instead.


def test_nul_from_a_yaml_escape_is_named_by_line_and_field():
    text = edit("title: Tiny study", 'title: "Tiny\\0 study"')
    (problem,) = problems_of(text)
    assert (problem.line, problem.path) == (2, "title")
    assert problem.message.startswith("contains a NUL character (\\x00) at character 5")
    assert "line 2, title: contains a NUL character" in error_of(text)


def test_nul_from_a_json_escape_deep_in_the_spec():
    data = load_spec(BASE).to_dict()
    data["questions"][0]["text"] = "It\u0000 helped."
    text = json.dumps(data, indent=2)
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "\\u0000" in row)
    (problem,) = problems_of(text)
    assert (problem.line, problem.path) == (line, "questions[0].text")
    assert "NUL character" in problem.message


def test_nul_in_a_key_a_list_item_and_a_form_payload():
    text = edit("levels: [benign, malicious]", 'levels: [benign, "mali\\0cious"]')
    assert any(
        p.path == "factors[0].levels[1]" and p.line == 11 and "NUL character" in p.message
        for p in problems_of(text)
    )
    text = edit("  code: ABC", '  "co\\0de": ABC')
    assert any(
        p.path == "completion.co\x00de" and p.message.startswith("the field name contains a NUL")
        for p in problems_of(text)
    )
    data = load_spec(BASE).to_dict()
    data["completion"]["code"] = "AB\x00C"
    with pytest.raises(SpecError) as info:
        load_spec_data(data)
    assert [(p.path, p.message.split(" (")[0]) for p in info.value.problems] == [
        ("completion.code", "contains a NUL character")
    ]


def test_raw_nul_in_a_yaml_file_is_named_by_line():
    (problem,) = problems_of(edit("instructions: Rate things.", "instructions: Rate\x00 things."))
    assert problem.line == 4
    assert "#x0000 is not allowed" in problem.message


@pytest.mark.parametrize(
    ("escaped", "found"),
    [("\\a", "the control character U+0007"), ("\\ud800", "an unpaired surrogate U+D800")],
)
def test_other_unstorable_characters_from_escapes(escaped, found):
    (problem,) = problems_of(edit("consent: You agree.", f'consent: "You{escaped} agree."'))
    assert (problem.line, problem.path) == (3, "consent")
    assert problem.message.startswith(f"contains {found}")


# --------------------------------------------------------------------------- anonymous links


def test_anonymous_links_default_to_false_and_are_kept_when_true():
    assert load_spec(BASE).anonymous_links is False
    assert load_spec(BASE + "anonymous_links: null\n") == load_spec(BASE)
    spec = load_spec(BASE + "anonymous_links: true\n")
    assert spec.anonymous_links is True
    data = spec.to_dict()
    assert list(data).index("anonymous_links") == list(data).index("recruitment_params") + 1
    assert "anonymous_links: true" in dump_spec(spec)
    assert load_spec(dump_spec(spec)) == spec
    assert load_spec(json.dumps(data)) == spec
    assert load_spec_data(data) == spec


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ('"true"', "a string ('true')"),
        ("1", "an integer (1)"),
        ("[true]", "a list"),
        ("{allowed: true}", "a mapping"),
    ],
)
def test_anonymous_links_must_be_a_boolean(value, found):
    text = edit("items_per_participant: 4", f"items_per_participant: 4\nanonymous_links: {value}")
    (problem,) = problems_of(text)
    assert (problem.line, problem.path) == (7, "anonymous_links")
    assert problem.message == f"must be true or false, found {found}"
    assert f"line 7, anonymous_links: must be true or false, found {found}" in error_of(text)


@pytest.mark.django_db
def test_anonymous_links_round_trip_through_the_database():
    from studies import selectors, services

    for value in (True, False):
        spec = load_spec(BASE + f"anonymous_links: {str(value).lower()}\n")
        study = services.import_study(spec=spec)
        assert study.anonymous_links is value
        exported = selectors.study_spec(study)
        assert exported.anonymous_links is value
        assert load_spec(dump_spec(exported)) == spec
