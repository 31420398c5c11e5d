"""Characters a researcher's text may not contain, and why, for spec and stimuli checks."""

from __future__ import annotations

import re

# NUL: PostgreSQL stores it neither in text nor in JSON. The other C0 controls (all but tab,
# line feed and carriage return) are invisible on the pages and illegal in XML. A lone
# surrogate (from a JSON or YAML escape such as \ud800) is not Unicode and cannot be encoded.
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def unstorable_character(text: str) -> str | None:
    """Why ``text`` cannot be stored and shown as it is (naming the first such character and
    where it is), or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char, position = found.group(), found.start() + 1
    if char == "\x00":
        return (
            f"contains a NUL character (\\x00) at character {position}, "
            "which the database cannot store; remove it"
        )
    if "\ud800" <= char <= "\udfff":
        return (
            f"contains an unpaired surrogate U+{ord(char):04X} at character {position}, "
            "which is not valid Unicode; remove it or write the whole character"
        )
    return (
        f"contains the control character U+{ord(char):04X} at character {position}, "
        "which pages cannot show; remove it"
    )
