"""Pure validation of a participant's answers against the questions' Likert scales."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext as _


class ScaleQuestion(Protocol):
    key: str
    points: int
    required: bool


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
        try:
            value = int(submitted)
        except ValueError:
            errors[question.key] = _("Please choose one of the options shown.")
            continue
        if not 1 <= value <= question.points:
            errors[question.key] = _("Please choose one of the options shown.")
            continue
        values[question.key] = value
    return ParsedAnswers(values=values, errors=errors)
