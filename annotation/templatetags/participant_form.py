"""Template filters for the participant pages' rating forms."""

from __future__ import annotations

from collections.abc import Sequence

from django import template

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
