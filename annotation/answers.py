"""Pure validation of a participant's answers: Likert item pages and questionnaire blocks."""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext as _

# Free-text questions without their own limit accept this many characters (SPECFORMAT default).
DEFAULT_MAX_LENGTH = 1000
# A number field longer than this is not a number anyone typed.
_MAX_NUMBER_CHARS = 40
# Python's int() and float() also take "٣", "４", "0_2", "+5" and "inf": answers are ASCII
# digits as the page's own inputs send them, nothing else.
_SCALE_POINT = re.compile(r"[1-9][0-9]{0,2}", re.ASCII)
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)


def scale_point(text: str) -> int | None:
    """A submitted scale point ("1", "7") as an integer; None for anything else."""
    return int(text) if _SCALE_POINT.fullmatch(text) else None


class ScaleQuestion(Protocol):
    key: str
    points: int
    required: bool


class BlockQuestion(Protocol):
    key: str
    kind: str
    required: bool
    points: int | None
    options: list[str]
    max_length: int | None
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True)
class ParsedAnswers:
    values: dict[str, int]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors


def parse_answers(questions: Sequence[ScaleQuestion], raw: Mapping[str, str]) -> ParsedAnswers:
    """Turn submitted form values into integers on each question's scale, or say what is wrong."""
    values: dict[str, int] = {}
    errors: dict[str, str] = {}
    for question in questions:
        submitted = (raw.get(question.key) or "").strip()
        if not submitted:
            if question.required:
                errors[question.key] = _("Please choose an answer.")
            continue
        value = scale_point(submitted)
        if value is None or not 1 <= value <= question.points:
            errors[question.key] = _("Please choose one of the options shown.")
            continue
        values[question.key] = value
    return ParsedAnswers(values=values, errors=errors)


@dataclass(frozen=True)
class TypedAnswer:
    """One block answer in the column its kind is stored in (see BlockAnswer)."""

    number: float | None = None
    text: str = ""
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedBlockAnswers:
    # Only answered questions appear: an unanswered optional question stores nothing.
    values: dict[str, TypedAnswer]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors


def _as_list(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _first(value: str | Sequence[str] | None) -> str:
    values = _as_list(value)
    return values[0] if values else ""


def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _likert(question: BlockQuestion, submitted: str) -> TypedAnswer | str:
    value = scale_point(submitted)
    if value is None or not 1 <= value <= (question.points or 0):
        return _("Please choose one of the options shown.")
    return TypedAnswer(number=value)


def _single(question: BlockQuestion, submitted: str) -> TypedAnswer | str:
    by_label = {option.strip(): option for option in question.options}
    if submitted not in by_label:
        return _("Please choose one of the options shown.")
    return TypedAnswer(text=by_label[submitted])


def _number(question: BlockQuestion, submitted: str) -> TypedAnswer | str:
    strict = len(submitted) <= _MAX_NUMBER_CHARS and _DECIMAL.fullmatch(submitted)
    value = float(submitted) if strict else math.nan
    if not math.isfinite(value):
        return _("Please enter a number, using digits (for example 3 or 2.5).")
    low, high = question.min_value, question.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        if low is not None and high is not None:
            return _("Please enter a number from %(min)s to %(max)s.") % {
                "min": _format_number(low),
                "max": _format_number(high),
            }
        if low is not None:
            return _("Please enter a number of at least %(min)s.") % {"min": _format_number(low)}
        return _("Please enter a number of at most %(max)s.") % {"max": _format_number(high)}
    return TypedAnswer(number=value)


def _free_text(question: BlockQuestion, submitted: str) -> TypedAnswer | str:
    limit = question.max_length or DEFAULT_MAX_LENGTH
    if len(submitted) > limit:
        return _("Please shorten your answer to at most %(limit)d characters (it has %(n)d).") % {
            "limit": limit,
            "n": len(submitted),
        }
    return TypedAnswer(text=submitted)


def parse_block_answers(
    questions: Sequence[BlockQuestion], raw: Mapping[str, str | Sequence[str]]
) -> ParsedBlockAnswers:
    """Check one block page's answers strictly by each question's kind; typed values or errors.

    ``raw`` maps a question key to the submitted string, or to the list of strings for a
    multiple-choice question (a form's ``getlist``).
    """
    values: dict[str, TypedAnswer] = {}
    errors: dict[str, str] = {}
    for question in questions:
        submitted = raw.get(question.key)
        if question.kind == "multiple_choice":
            chosen = {value.strip() for value in _as_list(submitted)} - {""}
            if not chosen:
                if question.required:
                    errors[question.key] = _("Please choose at least one answer.")
                continue
            if not chosen <= {option.strip() for option in question.options}:
                errors[question.key] = _("Please choose only among the options shown.")
                continue
            # Stored in the order the options are listed, whatever order the browser sent.
            values[question.key] = TypedAnswer(
                choices=tuple(option for option in question.options if option.strip() in chosen)
            )
            continue
        text = _first(submitted)
        if question.kind == "free_text":
            # Browsers send line breaks as CRLF but count them as one character (maxlength).
            text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
        else:
            text = text.strip()
        if not text:
            if question.required:
                errors[question.key] = (
                    _("Please answer this question.")
                    if question.kind in ("free_text", "number")
                    else _("Please choose an answer.")
                )
            continue
        parse = {
            "likert": _likert,
            "single_choice": _single,
            "number": _number,
            "free_text": _free_text,
        }.get(question.kind)
        if parse is None:
            errors[question.key] = _("This question cannot be answered.")
            continue
        outcome = parse(question, text)
        if isinstance(outcome, str):
            errors[question.key] = outcome
        else:
            values[question.key] = outcome
    return ParsedBlockAnswers(values=values, errors=errors)
