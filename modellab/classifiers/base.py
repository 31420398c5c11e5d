"""What every classifier takes and gives: a prompt and response in, a label and rationale out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ClassifierInput:
    """One response to label, with the prompt it answered (the judge reads both)."""

    prompt: str
    response: str


@dataclass(frozen=True)
class Classification:
    """A label of the classifier's scheme, or ``unparsed`` (then ``raw`` keeps the answer)."""

    label: str
    rationale: str
    raw: str = ""
    attempts: int = 1


class Classifier(Protocol):
    #: The classifier's name as the registry, pages and files write it.
    name: str
    #: ``three_way`` or ``five_way`` (modellab.classifiers.labels).
    scheme: str

    def classify(self, items: list[ClassifierInput]) -> list[Classification]:
        """Label every item, in order; one item failing must not fail the others."""
        ...
