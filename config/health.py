"""/healthz for load balancers: the database and the broker, checked cheaply on every call."""

from __future__ import annotations

import logging

from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
#: Seconds the broker ping may take before the broker counts as down.
BROKER_TIMEOUT_S = 2.0


def check_database() -> str:
    connection = connections["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except DatabaseError as exc:
        logger.warning("healthz: database unavailable: %s", exc)
        connection.close_if_unusable_or_obsolete()
        return "unavailable"


def check_broker() -> str:
    from config.celery import app
    from config.dispatch import BROKER_ERRORS

    try:
        # A fresh connection: a pooled one may look connected to a broker that has gone.
        with app.connection_for_write(connect_timeout=BROKER_TIMEOUT_S) as connection:
            connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)
        return "ok"
    except BROKER_ERRORS as exc:
        logger.warning("healthz: broker unavailable: %s", exc)
        return "unavailable"


def healthz(request: HttpRequest) -> HttpResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    healthy = all(state == "ok" for state in checks.values())
    response = JsonResponse(checks, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response


class HealthCheckMiddleware:
    """Answers /healthz before any other middleware: load balancers probe a backend by its
    address over plain HTTP, which host validation and the HTTPS redirect would refuse, and a
    probe needs no session, no CSRF cookie and no request metrics."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == HEALTH_PATH:
            return healthz(request)
        return self.get_response(request)
