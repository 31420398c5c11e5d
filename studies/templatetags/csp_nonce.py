"""Template filter putting the page's Content-Security-Policy nonce on inline scripts we embed."""

import re

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

# An opening <script> tag without a src: the inline ones.
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)", re.IGNORECASE)


@register.filter
def with_nonce(markup: SafeString, request) -> SafeString:
    """Markup we trust already (Plotly's figure div and its Plotly.newPlot call) with the
    request's CSP nonce on each inline <script>, so the page's policy needs no 'unsafe-inline'
    for scripts. Unchanged where no CSP middleware ran (no nonce, and no policy to satisfy)."""
    nonce = getattr(request, "csp_nonce", None)
    if nonce is None:
        return markup
    attribute = f'<script nonce="{escape(str(nonce))}"'
    return mark_safe(_INLINE_SCRIPT.sub(attribute, str(markup)))  # noqa: S308 - input was safe
