"""Response classifiers: a label and a short rationale for each response (see labels.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from modellab.classifiers.base import Classification, Classifier, ClassifierInput
from modellab.classifiers.labels import SCHEMES, THREE_WAY

if TYPE_CHECKING:
    from modellab.classifiers.string_match import Phrases
    from studies.models import LanguageModel

#: The classifiers ``build_classifier`` knows, as pages, files and the registry name them.
CLASSIFIERS: tuple[str, ...] = ("string_match", "llm_judge")

__all__ = [
    "CLASSIFIERS",
    "Classification",
    "Classifier",
    "ClassifierInput",
    "build_classifier",
]


def build_classifier(
    name: str,
    *,
    scheme: str,
    judge_model: LanguageModel | None = None,
    judge_prompt: str | None = None,
    phrases: Phrases | Mapping[str, object] | None = None,
    max_attempts: int = 3,
) -> Classifier:
    """The classifier ``name`` for ``scheme``; ValueError saying what is wrong otherwise.

    ``string_match`` labels three_way only and takes ``phrases`` (a Phrases, or a mapping with
    keys refusal, partial, window). ``llm_judge`` needs ``judge_model`` (a registry model; the
    caller checks the user may use it with ``studies.access.can_use_model``) and takes
    ``judge_prompt`` (None: ``judge.default_judge_prompt(scheme)``) and ``max_attempts``.
    """
    if name not in CLASSIFIERS:
        raise ValueError(f"unknown classifier {name!r}; choose one of {', '.join(CLASSIFIERS)}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    if name == "string_match":
        if scheme != THREE_WAY:
            raise ValueError(
                f"string_match labels three_way only, not {scheme}; use llm_judge for five_way"
            )
        if judge_model is not None or judge_prompt is not None:
            raise ValueError("a judge model and judge prompt are for llm_judge, not string_match")
        from modellab.classifiers.string_match import StringMatchClassifier

        return StringMatchClassifier(phrases)
    if phrases is not None:
        raise ValueError("phrases are for string_match, not llm_judge")
    if judge_model is None:
        raise ValueError("llm_judge needs a judge model: a model of the registry")
    from modellab.classifiers.judge import LLMJudge

    return LLMJudge(
        model=judge_model, scheme=scheme, prompt=judge_prompt, max_attempts=max_attempts
    )
