"""Template filters for researcher-written text: Markdown rendered to sanitised HTML."""

from functools import lru_cache

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Render Markdown, then strip anything but harmless formatting (no scripts, no styles)."""
    return mark_safe(_sanitised_html(text or ""))  # noqa: S308 - nh3 has sanitised it


# A study's consent, instructions and block texts are rendered on every participant's pages;
# Markdown's parser costs milliseconds each time, the same text always gives the same HTML.
@lru_cache(maxsize=512)
def _sanitised_html(text: str) -> str:
    return nh3.clean(markdown_lib.markdown(text, extensions=["extra", "sane_lists"]))


@register.filter
def as_label(key: str) -> str:
    """Show a machine key such as ``dangerous_topics`` as "Dangerous topics"."""
    return (key or "").replace("_", " ").strip().capitalize()
