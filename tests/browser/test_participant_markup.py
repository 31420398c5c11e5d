"""Participant templates carry nothing a strict Content-Security-Policy (script-src 'self',
style-src 'self') would block, in every branch, including those no browser test reaches."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = sorted(
    (Path(__file__).resolve().parents[2] / "templates" / "annotation").glob("*.html")
)
INLINE = {
    "inline <script>": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "event handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_participant_templates_exist():
    assert len(TEMPLATES) >= 15


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_participant_template_has_no_inline_script_or_style(template: Path):
    text = template.read_text(encoding="utf-8")
    found = [name for name, pattern in INLINE.items() if pattern.search(text)]
    assert not found, f"{template.name}: {', '.join(found)}"


@pytest.mark.parametrize(
    "template",
    [path for path in TEMPLATES if not path.name.startswith("_") and path.name != "base.html"],
    ids=lambda path: path.name,
)
def test_every_participant_page_has_an_h1(template: Path):
    assert "<h1" in template.read_text(encoding="utf-8"), f"{template.name} has no <h1>"
