"""Who may arrive: the recruitment link's parameters, and limits on new arrivals per network
address and per study, counted in the shared cache (Redis) and let through when it is down."""

from __future__ import annotations

import logging
import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

log = logging.getLogger(__name__)

# Longer recruitment values are cut: real platform ids are far shorter.
_MAX_PARAM_CHARS = 200


class RecruitmentLinkInvalid(Exception):
    """A recruitment parameter holds characters no platform sends (NUL, control characters)."""


@dataclass(frozen=True)
class RecruitmentLink:
    participant_id: str
    # Other recruitment values by their key ("study", "session"), as the link carried them.
    values: dict[str, str]

    @property
    def session_id(self) -> str:
        return self.values.get("session", "")


def _clean(value: str) -> str:
    value = value.strip()[:_MAX_PARAM_CHARS]
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value):
        raise RecruitmentLinkInvalid(value)
    return value


def recruitment_link(query: Mapping[str, str], params: Mapping[str, str]) -> RecruitmentLink:
    """Read the recruitment values from a link's query string, by the study's parameter names."""
    values = {key: _clean(query.get(name, "")) for key, name in params.items()}
    participant_id = values.pop("participant", "")
    return RecruitmentLink(
        participant_id=participant_id, values={k: v for k, v in values.items() if v}
    )


@dataclass(frozen=True)
class ArrivalLimit:
    count: int
    seconds: int


def parse_limit(text: str) -> ArrivalLimit | None:
    """ "60/600" → 60 arrivals per 600 s; "0" or "" turns the limit off."""
    text = (text or "").strip()
    if text in ("", "0"):
        return None
    count, _, seconds = text.partition("/")
    limit = ArrivalLimit(int(count), int(seconds or 60))
    if limit.count < 1 or limit.seconds < 1:
        raise ValueError(f"an arrival limit is COUNT/SECONDS with both above 0, not {text!r}")
    return limit


def client_address(request: HttpRequest) -> str:
    """The arriving browser's address: REMOTE_ADDR, or the address the trusted proxies saw."""
    proxies = settings.TRUSTED_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if len(hops) >= proxies:
            return hops[-proxies]
    return request.META.get("REMOTE_ADDR", "")


# While the cache is unreachable, arrivals are let through without asking it again for a while:
# the participant path must never wait on Redis.
_cache_down_until = 0.0
_CACHE_RETRY_SECONDS = 15.0


def _count(key: str, window: int) -> int | None:
    """Add one arrival to a fixed window's counter; None when the cache cannot be reached."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return None
    cache = caches[settings.ARRIVAL_LIMIT_CACHE]
    bucket = f"arrivals:{key}:{int(time.time()) // window}"
    try:
        if cache.add(bucket, 1, timeout=window + 1):
            return 1
        return cache.incr(bucket)
    except ValueError:
        # The window's key expired between add and incr: this arrival starts a new count.
        return 1
    except Exception as exc:  # noqa: BLE001 - any cache failure means: let people in
        _cache_down_until = time.monotonic() + _CACHE_RETRY_SECONDS
        log.warning(
            "arrival limits are off for %ss, the cache is unreachable: %s",
            _CACHE_RETRY_SECONDS,
            exc,
        )
        return None


def admit_arrival(*, study_pk: int, address: str) -> int | None:
    """Count a new participant's arrival; the seconds to wait when a limit is reached, else None.

    Only arrivals that would create a participant are counted: people resuming are never
    held back.
    """
    limits = (
        (f"{study_pk}:addr:{address}", settings.ARRIVALS_PER_ADDRESS),
        (f"{study_pk}:study", settings.ARRIVALS_PER_STUDY),
    )
    for key, text in limits:
        limit = parse_limit(text)
        if limit is None:
            continue
        seen = _count(key, limit.seconds)
        if seen is not None and seen > limit.count:
            return limit.seconds - int(time.time()) % limit.seconds
    return None
