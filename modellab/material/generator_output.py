"""Reading a generator model's answer: a JSON array of objects with the fields asked for.

The answer, stripped, must be one JSON array (alone, or inside one Markdown fence). Each entry
is read on its own: an entry that is not an object, lacks a required field, has a field of the
wrong type or an empty text is left out with a problem naming it, so one bad entry does not
lose the others. An answer that is not a JSON array at all is a GeneratorOutputError (a failed
call, which the pipeline may ask again).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

# One fence around the whole answer; its language tag, if any, must be json.
_FENCE = re.compile(r"\A```(?:json)?[ \t]*\n(.*?)\n?[ \t]*```\Z", re.S | re.I)
#: Longest text a field may hold: a generated prompt or scenario, not a document.
MAX_FIELD_CHARS = 4000


class GeneratorOutputError(ValueError):
    """The answer is not a JSON array; the message says why."""


@dataclass(frozen=True)
class ParsedAnswer:
    entries: list[dict[str, object]]
    problems: list[str]


def parse_candidates(
    text: str,
    *,
    required: Mapping[str, type],
    optional: Mapping[str, type] | None = None,
) -> ParsedAnswer:
    """The entries of a generator answer. ``required``/``optional`` map each field to ``str``
    or ``list`` (a list of strings); unknown fields are ignored; texts are stripped."""
    optional = dict(optional or {})
    body = (text or "").strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced[1].strip()
    if not body:
        raise GeneratorOutputError("the answer is empty")
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise GeneratorOutputError(f"the answer is not a JSON array ({exc.msg})") from None
    if not isinstance(data, list):
        raise GeneratorOutputError(f"the answer is JSON but not an array ({type(data).__name__})")
    entries, problems = [], []
    for number, raw in enumerate(data, 1):
        entry, problem = _read_entry(raw, required, optional)
        if problem:
            problems.append(f"entry {number}: {problem}")
        else:
            entries.append(entry)
    return ParsedAnswer(entries, problems)


def _read_value(name: str, value: object, kind: type) -> tuple[object, str | None]:
    if kind is list:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return None, f"{name!r} must be a list of strings"
        return [v.strip() for v in value if v.strip()], None
    if not isinstance(value, str):
        return None, f"{name!r} must be a string, not {type(value).__name__}"
    value = value.strip()
    if len(value) > MAX_FIELD_CHARS:
        return None, f"{name!r} is longer than {MAX_FIELD_CHARS} characters"
    return value, None


def _read_entry(
    raw: object, required: Mapping[str, type], optional: Mapping[str, type]
) -> tuple[dict[str, object], str | None]:
    if not isinstance(raw, dict):
        return {}, f"must be an object, not {type(raw).__name__}"
    missing = [name for name in required if name not in raw]
    if missing:
        return {}, f"missing {', '.join(map(repr, missing))}"
    entry: dict[str, object] = {}
    for name, kind in {**required, **optional}.items():
        if name not in raw or (name in optional and raw[name] is None):
            entry[name] = [] if kind is list else ""
            continue
        value, problem = _read_value(name, raw[name], kind)
        if problem:
            return {}, problem
        if name in required and kind is str and not value:
            return {}, f"{name!r} is empty"
        entry[name] = value
    return entry, None
