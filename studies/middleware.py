"""Keeps coder-only accounts (studies.access.is_coder_only) off every researcher page."""

from __future__ import annotations

from django.http import Http404, HttpRequest

from studies import access

# URL namespaces of the researcher side: its pages and the session-authenticated API (token
# requests are checked by studies.api.common.IsResearcher, since DRF authenticates them later).
RESEARCHER_NAMESPACES = frozenset({"studies", "modellab"})


class CoderOnlyAccountsMiddleware:
    """A coder-only account gets "not found" on researcher pages, as for a study not theirs.

    One place rather than a check in each view: a researcher page added later is covered too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if (
            match is not None
            and RESEARCHER_NAMESPACES.intersection(match.namespaces)
            and request.user.is_authenticated
            and access.is_coder_only(request.user)
        ):
            raise Http404("No such page.")
        return None
