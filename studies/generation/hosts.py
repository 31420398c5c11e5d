"""Which hosts a model's requests (and its API key) may go to: ``MODEL_HOSTS_ALLOWED``."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

DEFAULT_ALLOWED = "localhost,127.0.0.1,[::1]"


class HostNotAllowed(ValueError):
    """A model endpoint on a host the platform may not send requests to."""


def allowed_patterns() -> list[str]:
    """The setting's entries, lower-cased, IPv6 brackets removed (``*.example.org`` kept)."""
    try:
        from django.conf import settings

        raw = settings.MODEL_HOSTS_ALLOWED
    except Exception:  # outside Django (a benchmark script): the environment decides
        raw = os.environ.get("MODEL_HOSTS_ALLOWED", DEFAULT_ALLOWED)
    entries = raw.split(",") if isinstance(raw, str) else list(raw)
    return [e.strip().lower().strip("[]") for e in entries if e and e.strip()]


def host_matches(host: str, pattern: str) -> bool:
    """``*.example.org`` matches any sub-domain (not example.org itself); else exact match."""
    host = host.lower().rstrip(".").strip("[]")
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def host_allowed(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return bool(host) and any(host_matches(host, p) for p in allowed_patterns())


def check_host_allowed(url: str) -> None:
    """Raise HostNotAllowed, naming the host and the setting, unless the URL's host is allowed."""
    if not host_allowed(url):
        host = urlsplit(url).hostname or url
        raise HostNotAllowed(
            f"the host '{host}' is not allowed for models (MODEL_HOSTS_ALLOWED: "
            f"{', '.join(allowed_patterns()) or 'nothing'}); an administrator must add it "
            "before requests, and API keys, may be sent there"
        )
