"""Sending a task from a request: after commit, failing fast, never leaving a row queued."""

from __future__ import annotations

import logging
from collections.abc import Callable

import kombu.exceptions
import redis.exceptions
from django.db import transaction

logger = logging.getLogger(__name__)

#: What a publish raises when the broker cannot be reached (refused, timed out, dropped).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)


class QueueUnavailable(Exception):
    """The broker did not take a task; the row it was for has already been marked failed."""


def queue_unavailable_reason(what: str, exc: BaseException) -> str:
    return (
        f"RefusalLab could not reach the job queue to start the {what} "
        f"({type(exc).__name__}), so nothing was started. Try again in a minute; "
        "if it keeps failing, the broker (Redis) is down: see /healthz."
    )


def send_on_commit(
    send: Callable[[], object], *, what: str, on_failure: Callable[[str], None]
) -> None:
    """Publish once the transaction commits (a worker must find the row it is sent for).

    Should the broker refuse, ``on_failure(reason)`` records why on the row, in a transaction
    of its own, and QueueUnavailable reaches the caller of the outermost atomic block: the
    request then fails with that reason instead of leaving a row queued for ever.
    """

    def publish() -> None:
        try:
            send()
        except BROKER_ERRORS as exc:
            reason = queue_unavailable_reason(what, exc)
            logger.warning("broker unreachable, %s not started: %s", what, exc)
            on_failure(reason)
            raise QueueUnavailable(reason) from exc

    transaction.on_commit(publish)
