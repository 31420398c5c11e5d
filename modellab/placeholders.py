"""Placeholders ("{name}") in the model lab's editable prompts: checked, then filled in one pass."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# A {name} that looks like a placeholder; JSON braces in a prompt ({"label": …}) do not.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_DOUBLED = re.compile(r"(\{\{|\}\})")


def _braced(names: Sequence[str]) -> list[str]:
    return [f"{{{name}}}" for name in names]


def check_placeholders(
    template: object,
    *,
    required: Sequence[str],
    allowed: Sequence[str],
    what: str,
    error: type[ValueError] = ValueError,
    joiner: str = " and ",
    why_required: str = "",
    doubled_braces: bool = False,
) -> str:
    """``template`` if it is not empty, contains every ``required`` placeholder and none but
    ``allowed``; else ``error`` naming ``what`` and the placeholders at fault. With
    ``doubled_braces``, "{{" and "}}" are literal braces, not part of a placeholder."""
    if not isinstance(template, str) or not template.strip():
        raise error(f"{what} is empty")
    text = _DOUBLED.sub("", template) if doubled_braces else template
    used = set(PLACEHOLDER.findall(text))
    missing = [name for name in required if name not in used]
    if missing:
        raise error(f"{what} must contain {joiner.join(_braced(missing))}{why_required}")
    unknown = sorted(used - set(allowed))
    if unknown:
        raise error(
            f"unknown placeholder(s) {', '.join(_braced(unknown))} in {what}; "
            f"use {', '.join(_braced(allowed))}"
        )
    return template


def fill_placeholders(
    template: str, values: Mapping[str, object], *, doubled_braces: bool = False
) -> str:
    """Every known placeholder replaced in one pass, so a value that itself contains "{name}"
    stays as written; unknown ones are left. With ``doubled_braces``, "{{" and "}}" become
    single braces."""

    def fill(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], text)

    if not doubled_braces:
        return fill(template)
    return "".join(
        {"{{": "{", "}}": "}"}.get(piece) or fill(piece) for piece in _DOUBLED.split(template)
    )
