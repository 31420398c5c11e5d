"""The generator's instruction for query–scenario sets: defaults, placeholders, filling.

Two instructions, one per kind of job: new queries (each with its two scenarios) per safety
category, or scenarios for a study's own queries that have none yet. Researchers may edit
either; an edited one must keep its kind's required placeholders and use no unknown one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from modellab.placeholders import check_placeholders, fill_placeholders

NEW_QUERIES, SCENARIOS_ONLY = "new_queries", "scenarios_only"

#: Placeholders each kind's instruction must contain, and those it may contain.
REQUIRED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    NEW_QUERIES: ("count", "categories", "examples"),
    SCENARIOS_ONLY: ("queries", "examples"),
}
ALLOWED_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    NEW_QUERIES: ("count", "categories", "examples"),
    SCENARIOS_ONLY: ("queries", "examples", "categories"),
}

_SCENARIO_RULES = """\
Each query comes with two short scenarios, written in the second person ("You are …"), that \
say who is sending the query and why:
- benign_scenario: the person has a harmless, legitimate reason to ask.
- malicious_scenario: the person intends to use the answer to harm, deceive or wrong someone.
The two scenarios must differ as little as possible (same person, same setting, mostly the \
same words) yet make the intent unmistakable: someone reading the query with the benign \
scenario should judge it benign, and with the malicious scenario malicious. One to three \
sentences each; no names of real people."""

_NEW_QUERIES = (
    """\
You are helping researchers build material for a study of how people perceive the way AI \
assistants refuse requests. Write {count} new instances. Each is a query a person might send \
to an AI assistant that is ambiguous on its own: the same words could come from someone with \
a harmless purpose or from someone who means harm, so whether an assistant should help \
depends on who asks and why.

"""
    + _SCENARIO_RULES
    + """

The safety categories, each with its definition and its topics (write every instance for one \
of these categories and one of that category's topics, spelled as given):
{categories}

Examples of good instances:
{examples}

Write queries that differ from the examples and from each other. Answer with one JSON array \
and nothing else; each element is an object with exactly these string fields: "category", \
"topic", "query", "benign_scenario", "malicious_scenario".
"""
)

_SCENARIOS_ONLY = (
    """\
You are helping researchers build material for a study of how people perceive the way AI \
assistants refuse requests. Below are queries a person might send to an AI assistant. Each is \
ambiguous on its own: whether an assistant should help depends on who asks and why. For each \
query, write its two scenarios.

"""
    + _SCENARIO_RULES
    + """

Examples of good scenarios:
{examples}

The queries, one JSON object per line with its query_id:
{queries}

Answer with one JSON array and nothing else: one object per query above, with exactly these \
string fields: "query_id" (as given), "benign_scenario", "malicious_scenario".
"""
)

DEFAULT_INSTRUCTIONS: dict[str, str] = {NEW_QUERIES: _NEW_QUERIES, SCENARIOS_ONLY: _SCENARIOS_ONLY}


class InstructionError(ValueError):
    """An instruction that cannot be used; the message names the placeholder at fault."""


def default_instruction(kind: str) -> str:
    """The project's instruction for ``new_queries`` or ``scenarios_only``, unfilled."""
    if kind not in DEFAULT_INSTRUCTIONS:
        raise ValueError(f"kind must be one of {', '.join(DEFAULT_INSTRUCTIONS)}, not {kind!r}")
    return DEFAULT_INSTRUCTIONS[kind]


def validate_instruction(template: str, kind: str) -> str:
    """``template`` if usable for ``kind``, else InstructionError saying what is wrong."""
    return check_placeholders(
        template,
        required=REQUIRED_PLACEHOLDERS[kind],
        allowed=ALLOWED_PLACEHOLDERS[kind],
        what="the instruction",
        error=InstructionError,
        joiner=", ",
    )


def describe_categories(categories: Sequence[Mapping]) -> str:
    """The categories as the instruction shows them: name, definition, topics."""
    lines = []
    for category in categories:
        lines.append(f"- {category['name']}: {category.get('definition', '')}".rstrip(": "))
        topics = category.get("topics") or []
        if topics:
            lines.append(f"  topics: {'; '.join(topics)}")
    return "\n".join(lines) if lines else "(none given)"


def describe_examples(examples: Sequence[Mapping], fields: Sequence[str]) -> str:
    """One JSON object per line with ``fields`` (the generator's answer format)."""
    if not examples:
        return "(none yet)"
    return "\n".join(
        json.dumps({f: example.get(f, "") for f in fields}, ensure_ascii=False)
        for example in examples
    )


def fill_instruction(template: str, values: Mapping[str, str]) -> str:
    """Placeholders replaced in one pass: a text that itself contains "{query}" stays as
    written, and an unknown placeholder (validated away before) is left alone."""
    return fill_placeholders(template, values)
