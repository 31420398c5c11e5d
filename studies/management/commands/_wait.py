"""What commands that start a job share: ``--wait``/``--timeout`` and the polling loop."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import CommandError, CommandParser

# Progress lives in PostgreSQL; reading it every 2 s is cheap and soon enough for a shell.
POLL_SECONDS = 2


def add_wait_arguments(parser: CommandParser, what: str = "run") -> None:
    parser.add_argument("--wait", action="store_true", help=f"poll until the {what} finishes")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait at most")


def wait_until_finished(
    read_progress: Callable[[], dict],
    describe: Callable[[dict], str],
    *,
    name: str,
    timeout: float,
    write: Callable[[str], None],
) -> dict:
    """Read the progress (a dict with ``finished``) and write ``describe(progress)`` until it
    is finished, then return it; CommandError if ``name`` (e.g. "run 7") is still running
    after ``timeout`` seconds. The job goes on either way: waiting only watches it."""
    deadline = time.monotonic() + timeout
    while True:
        progress = read_progress()
        write(describe(progress))
        if progress["finished"]:
            return progress
        if time.monotonic() > deadline:
            raise CommandError(f"{name} still running after {timeout} s")
        time.sleep(POLL_SECONDS)
