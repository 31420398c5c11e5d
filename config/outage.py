"""When PostgreSQL or the broker is unreachable: a friendly 503 that needs neither."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlsplit

import kombu.exceptions
import psycopg
import redis.exceptions
from django.contrib import messages
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.template.loader import render_to_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import defaults

from config.dispatch import QueueUnavailable

logger = logging.getLogger(__name__)

#: Seconds a client is told to wait (Retry-After) before trying again.
RETRY_AFTER_S = 60

OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    QueueUnavailable,
)

API_DETAIL = (
    "RefusalLab is briefly unavailable (its database or job queue is not answering); "
    "try again in a minute."
)

# Used only if the template itself cannot be rendered: it must never fail in turn.
FALLBACK_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Back in a minute</title>'
    "</head><body><main><h1>Back in a minute</h1><p>The study is briefly unavailable. "
    "Your answers so far are saved; try again in a minute.</p></main></body></html>"
)


def outage_cause(exc: BaseException | None) -> BaseException | None:
    """The outage error behind ``exc`` (itself or what it was raised from), if any."""
    for _ in range(5):
        if exc is None or isinstance(exc, OUTAGE_ERRORS):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def _wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.headers.get("Accept", "").startswith(
        "application/json"
    )


def outage_response(request: HttpRequest, detail: str | None = None) -> HttpResponse:
    """503 with Retry-After: JSON for the API, else a page rendered without the database."""
    if _wants_json(request):
        response: HttpResponse = JsonResponse({"detail": detail or API_DETAIL}, status=503)
    else:
        try:
            # No request: no context processors, so nothing here touches the database.
            body = render_to_string("503.html", {"detail": detail})
        except Exception:  # noqa: BLE001 - the outage page is the last resort and may not fail
            logger.exception("the outage page could not be rendered")
            body = FALLBACK_PAGE
        response = HttpResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


def _safe_referer(request: HttpRequest) -> str | None:
    referer = request.headers.get("Referer", "")
    allowed = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    if not referer or not allowed:
        return None
    parts = urlsplit(referer)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _back_with_message(request: HttpRequest, reason: str) -> HttpResponse | None:
    """A researcher's form post whose task the broker refused: back to the page, saying why."""
    referer = _safe_referer(request)
    if request.method != "POST" or referer is None or not hasattr(request, "_messages"):
        return None
    messages.error(request, reason)
    # 303: the browser fetches the page it came from with GET.
    response = HttpResponseRedirect(referer)
    response.status_code = 303
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: an outage (in a view or a middleware) answers 503, anything else 500."""
    cause = outage_cause(sys.exc_info()[1])
    if cause is None:
        return defaults.server_error(request)
    logger.warning("answered 503 for %s: %s", request.path, cause)
    if isinstance(cause, QueueUnavailable):
        if not _wants_json(request):
            back = _back_with_message(request, str(cause))
            if back is not None:
                return back
        return outage_response(request, str(cause))
    return outage_response(request)
