"""Scale validation of submitted answers (pure, no database)."""

from dataclasses import dataclass

from annotation.answers import TypedAnswer, parse_answers, parse_block_answers


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


@dataclass
class BQ:
    key: str
    kind: str
    required: bool = True
    points: int | None = None
    options: list = None
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self):
        self.options = self.options or []


def test_block_answers_come_back_typed_by_kind():
    questions = [
        BQ("l", "likert", points=5),
        BQ("s", "single_choice", options=["yes", "no"]),
        BQ("m", "multiple_choice", options=["a", "b", "c"]),
        BQ("t", "free_text", max_length=5),
        BQ("n", "number", min_value=0, max_value=7),
    ]
    parsed = parse_block_answers(
        questions, {"l": "5", "s": "no", "m": ["c", "a", "c"], "t": " hi ", "n": "2.5"}
    )
    assert parsed.ok
    assert parsed.values == {
        "l": TypedAnswer(number=5),
        "s": TypedAnswer(text="no"),
        "m": TypedAnswer(choices=("a", "c")),  # option order, no duplicates
        "t": TypedAnswer(text="hi"),
        "n": TypedAnswer(number=2.5),
    }


def test_block_answers_outside_their_question_are_rejected():
    questions = [
        BQ("l0", "likert", points=5),
        BQ("l6", "likert", points=5),
        BQ("s", "single_choice", options=["yes", "no"]),
        BQ("m", "multiple_choice", options=["a", "b"]),
        BQ("t", "free_text", max_length=3),
        BQ("low", "number", min_value=0),
        BQ("high", "number", max_value=7),
        BQ("comma", "number"),
        BQ("nan", "number"),
        BQ("inf", "number"),
        BQ("huge", "number"),
    ]
    raw = {
        "l0": "0",
        "l6": "6",
        "s": "maybe",
        "m": ["a", "z"],
        "t": "four",
        "low": "-1",
        "high": "7.5",
        "comma": "3,5",
        "nan": "nan",
        "inf": "inf",
        "huge": "1e400",
    }
    parsed = parse_block_answers(questions, raw)
    assert set(parsed.errors) == set(raw)
    assert parsed.values == {}
    assert parsed.errors["low"] == "Please enter a number of at least 0."
    assert parsed.errors["high"] == "Please enter a number of at most 7."


def test_required_and_optional_block_questions():
    questions = [
        BQ("s", "single_choice", options=["x", "y"]),
        BQ("m", "multiple_choice", options=["x", "y"]),
        BQ("t", "free_text"),
        BQ("n", "number"),
        BQ("opt", "free_text", required=False),
        BQ("optm", "multiple_choice", options=["x"], required=False),
    ]
    parsed = parse_block_answers(questions, {"s": "", "m": [], "t": "   ", "opt": "", "optm": []})
    assert set(parsed.errors) == {"s", "m", "t", "n"}
    assert parsed.values == {}


def test_free_text_line_breaks_count_once_as_the_browser_counts_them():
    question = BQ("t", "free_text", max_length=3)
    parsed = parse_block_answers([question], {"t": "a\r\nb"})
    assert parsed.ok and parsed.values["t"].text == "a\nb"
    assert not parse_block_answers([BQ("t", "free_text")], {"t": "x" * 1001}).ok  # default 1000


def test_scale_answers_are_plain_ascii_digits_only():
    # Python's int() takes all of these; none is an option a participant's page offers.
    for odd in ("٣", "４", "0_2", "+5", " 3 4", "05", "3\x00", "³"):
        parsed = parse_answers([Q("a")], {"a": odd})
        assert parsed.errors.keys() == {"a"}, odd
        assert parsed.values == {}
    block = parse_block_answers([BQ("l", "likert", points=7)], {"l": "٣"})
    assert block.errors.keys() == {"l"}


def test_number_answers_are_plain_decimals_only():
    question = BQ("n", "number", min_value=-10, max_value=10_000)
    for odd in ("١٢", "1_000", "+5", "inf", "nan", "1e3", "٣.٥", "0x10"):
        parsed = parse_block_answers([question], {"n": odd})
        assert parsed.errors.keys() == {"n"}, odd
    for fine, value in (("12", 12.0), ("-3", -3.0), ("2.5", 2.5), (".5", 0.5), ("7.", 7.0)):
        parsed = parse_block_answers([question], {"n": fine})
        assert parsed.values["n"].number == value, fine
