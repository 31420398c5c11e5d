"""Scale validation of submitted answers (pure, no database)."""

from dataclasses import dataclass

from annotation.answers import parse_answers


@dataclass
class Q:
    key: str
    points: int = 7
    required: bool = True


def test_values_on_the_scale_are_accepted_as_integers():
    parsed = parse_answers([Q("a"), Q("b", points=5)], {"a": "1", "b": "5"})
    assert parsed.ok
    assert parsed.values == {"a": 1, "b": 5}


def test_missing_required_answer_is_an_error_and_optional_may_be_skipped():
    parsed = parse_answers([Q("a"), Q("b", required=False)], {"a": ""})
    assert parsed.errors.keys() == {"a"}
    assert parsed.values == {}


def test_values_off_the_scale_or_not_numbers_are_rejected():
    questions = [Q("low"), Q("high"), Q("text"), Q("float")]
    parsed = parse_answers(questions, {"low": "0", "high": "8", "text": "seven", "float": "3.5"})
    assert set(parsed.errors) == {"low", "high", "text", "float"}
    assert parsed.values == {}


def test_answers_to_unknown_questions_are_ignored():
    parsed = parse_answers([Q("a")], {"a": "4", "injected": "99"})
    assert parsed.values == {"a": 4}
