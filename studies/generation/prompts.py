"""Prompts that ask a model for each response type, or for its own natural answer, and the
checks that decide whether what came back is usable."""

from __future__ import annotations

import json
import re

from studies.domain import RESPONSE_TYPES

# Written for this project from the definitions in DESIGN.md; a job may override any of them.
DEFAULT_INSTRUCTIONS: dict[str, str] = {
    "direct_refusal": (
        "Decline the user's request in one short sentence. Do not explain why, do not offer "
        "alternatives and do not add anything else."
    ),
    "explanation_based": (
        "Decline the user's request and briefly explain why you cannot help (two or three "
        "sentences). Do not provide any of the requested information and do not suggest "
        "alternatives."
    ),
    "redirection": (
        "Do not fulfil the request as asked. Instead, steer the user towards related, safe and "
        "genuinely useful information or resources (two to four sentences). Make clear you are "
        "offering something different from what was asked."
    ),
    "partial_compliance": (
        "Respond cooperatively but keep the answer deliberately general: give a high-level, "
        "conceptual answer without specific, actionable steps, quantities or details. Do not "
        "say that you are refusing or holding anything back (three to five sentences)."
    ),
    "full_compliance": (
        "Answer the request fully, with specific and actionable detail, as a helpful expert "
        "would (three to six sentences)."
    ),
}

SYSTEM_PREFIX = (
    "You are writing one reply of an AI assistant for a research study on how people perceive "
    "assistant responses. Reply with the assistant's message only: no preamble, no quotation "
    "marks, no notes about these instructions.\n\n"
)

STRUCTURED_SYSTEM = (
    "You are writing replies of an AI assistant for a research study on how people perceive "
    "assistant responses. For the user's request, write one reply of each kind below and "
    "answer with a single JSON object whose keys are exactly: {keys}. Each value is the "
    "assistant's message as a string. No text outside the JSON.\n\n{definitions}"
)

# How the scenario reaches the model in the natural-response framings.
FRAMING_TEMPLATE = "{scenario}\n\n{query}"

Messages = tuple[dict[str, str], ...]


class MalformedOutput(ValueError):
    """The model answered, but not in a usable form; the raw text is kept with the item."""


def instructions_with_defaults(overrides: dict[str, str] | None) -> dict[str, str]:
    """The job's per-type instructions: the defaults, with the researcher's edits on top."""
    unknown = sorted(set(overrides or {}) - set(RESPONSE_TYPES))
    if unknown:
        raise ValueError(f"unknown response type(s) in instructions: {', '.join(unknown)}")
    merged = dict(DEFAULT_INSTRUCTIONS)
    merged.update({k: v.strip() for k, v in (overrides or {}).items() if v and v.strip()})
    return merged


def strategy_messages(query: str, response_type: str, instructions: dict[str, str]) -> Messages:
    return (
        {"role": "system", "content": SYSTEM_PREFIX + instructions[response_type]},
        {"role": "user", "content": query},
    )


def structured_messages(query: str, instructions: dict[str, str]) -> Messages:
    definitions = "\n".join(f"- {key}: {instructions[key]}" for key in RESPONSE_TYPES)
    system = STRUCTURED_SYSTEM.format(keys=", ".join(RESPONSE_TYPES), definitions=definitions)
    return ({"role": "system", "content": system}, {"role": "user", "content": query})


def natural_messages(query: str, scenario: str | None) -> Messages:
    """No strategy instruction at all: the model answers the way it would by itself."""
    content = FRAMING_TEMPLATE.format(scenario=scenario, query=query) if scenario else query
    return ({"role": "user", "content": content},)


def clean_reply(text: str | None) -> str:
    """A single reply, stripped; empty output is malformed."""
    cleaned = (text or "").strip()
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1].strip()
    if not cleaned:
        raise MalformedOutput("the model returned an empty reply")
    return cleaned


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)


def parse_structured(text: str | None) -> dict[str, str]:
    """The five replies from one structured answer; anything missing or not text is malformed."""
    raw = _FENCE.sub("", (text or "").strip())
    start, end = raw.find("{"), raw.rfind("}")
    if start == -1 or end <= start:
        raise MalformedOutput("no JSON object in the model's answer")
    try:
        data = json.loads(raw[start : end + 1])
    except json.JSONDecodeError as exc:
        raise MalformedOutput(f"the model's JSON does not parse: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedOutput("the model's JSON is not an object")
    missing = [key for key in RESPONSE_TYPES if not isinstance(data.get(key), str)]
    if missing:
        raise MalformedOutput(f"the model's JSON lacks text for: {', '.join(missing)}")
    return {key: clean_reply(data[key]) for key in RESPONSE_TYPES}
