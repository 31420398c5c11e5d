"""Template filters for the participant pages' rating forms."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

register = template.Library()


@register.filter
def shared_scale(questions: Sequence[dict]) -> list[tuple[int, str]]:
    """The scale points and anchors every question on the page shares; empty when they differ.

    A page whose statements share one scale is shown as a matrix (anchors as column headers);
    mixed scales each keep their own labelled group.
    """
    scales = [list(entry.get("choices") or ()) for entry in questions]
    if not scales or not scales[0] or any(scale != scales[0] for scale in scales[1:]):
        return []
    return scales[0]


@register.filter
def key_range(questions: Sequence[dict]) -> int:
    """The highest point a number key can choose on this page (keys 1–9)."""
    points = [len(entry.get("choices") or ()) for entry in questions]
    return min(max(points, default=0), 9)


# Rendered statements by what they show; a few pages' worth per study and language.
_KEPT_STATEMENTS: OrderedDict[tuple, str] = OrderedDict()
_KEPT_MAX = 256


def _statements_key(questions: Sequence[dict]) -> tuple | None:
    """What the statements' markup depends on, when it holds no answer or error of anyone's."""
    if any(entry.get("error") or entry.get("value") for entry in questions):
        return None
    shown = [(entry["question"], tuple(entry.get("choices") or ())) for entry in questions]
    return get_language(), tuple((q.pk, q.key, q.text, q.required, scale) for q, scale in shown)


@register.simple_tag(takes_context=True)
def rating_statements(context) -> SafeString:
    """The statements of a rating form. Every participant's page of a study shows the same
    markup until they answer; rendering its seventy-odd radios is most of a page's cost, so
    the empty form is rendered once per process and content."""
    questions = context.get("questions") or []
    key = _statements_key(questions)
    html = _KEPT_STATEMENTS.get(key) if key is not None else None
    if html is None:
        html = render_to_string("annotation/_statements.html", context.flatten())
        if key is not None:
            _KEPT_STATEMENTS[key] = html
            if len(_KEPT_STATEMENTS) > _KEPT_MAX:
                _KEPT_STATEMENTS.popitem(last=False)
    return mark_safe(html)  # noqa: S308 - rendered by our own escaping template
