"""Template filters for researcher-written text: Markdown rendered to sanitised HTML."""

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()


@register.filter
def markdown(text: str) -> SafeString:
    """Render Markdown, then strip anything but harmless formatting (no scripts, no styles)."""
    html = markdown_lib.markdown(text or "", extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html))  # noqa: S308 - nh3 has just sanitised it


@register.filter
def as_label(key: str) -> str:
    """Show a machine key such as ``dangerous_topics`` as "Dangerous topics"."""
    return (key or "").replace("_", " ").strip().capitalize()
