"""What the material generators' commands share: a text file named by an option, read whole."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError


def read_text(path: str | None) -> str | None:
    """The file's text (UTF-8); None when no path is given; a CommandError naming the file
    when it cannot be read."""
    if not path:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from None
