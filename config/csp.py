"""Content-Security-Policy per kind of page: participant, researcher (with or without charts)."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def directives_for(request: HttpRequest) -> dict | None:
    """The policy for this request's page; None: the researcher default (CONTENT_SECURITY_POLICY).

    By path rather than by view decorator, so a participant page added later is strict without
    anyone remembering to decorate it.
    """
    path = request.path_info
    if path.startswith(settings.CSP_PARTICIPANT_PREFIX):
        return settings.CSP_PARTICIPANT_DIRECTIVES
    if path.startswith(settings.CSP_ADMIN_PREFIX):
        return settings.CSP_ADMIN_DIRECTIVES
    match = getattr(request, "resolver_match", None)
    if match is not None and match.view_name in settings.CSP_CHART_VIEWS:
        return settings.CSP_CHART_DIRECTIVES
    return None


class PathPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware, with the policy chosen by directives_for().

    A view's own @csp_override still wins, and @csp_update/@csp_replace apply on top.
    """

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and parts.config is None:
            parts.config = directives_for(request)
        return parts
