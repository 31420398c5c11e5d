"""Backend for any OpenAI-compatible chat-completions endpoint (hosted APIs, a vLLM server)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import logging
import math
import os
import random
import re
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from studies.generation.backends.base import (
    ChatOutcome,
    ChatRequest,
    check_setting_keys,
    whole_number_setting,
)
from studies.generation.hosts import HostNotAllowed, check_host_allowed, host_allowed

logger = logging.getLogger(__name__)

#: Statuses worth another try: rate limiting and transient server or proxy trouble.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULTS: dict[str, Any] = {
    "api_key_env": None,
    "timeout_s": 60.0,
    "max_concurrency": 8,
    "max_retries": 5,
    "backoff_base_s": 1.0,
    "backoff_max_s": 30.0,
}
ALLOWED_KEYS = frozenset({"base_url", "model", *DEFAULTS})
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EXCERPT_CHARS = 300

T = TypeVar("T")


def _number(settings: dict, name: str, low: float, high: float) -> float:
    value = settings.get(name, DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, not {value}")
    return float(value)


def _integer(settings: dict, name: str, low: int, high: int) -> int:
    return whole_number_setting(settings, name, DEFAULTS[name], low, high)


def validate_settings(settings: dict) -> dict:
    """Check and fill in an OpenAI-compatible backend's settings; ValueError names the field."""
    check_setting_keys(settings, ALLOWED_KEYS)

    base_url = settings.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        raise ValueError("base_url is required, e.g. 'http://127.0.0.1:8001/v1'")
    base_url = base_url.strip()
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"base_url must be an http:// or https:// URL with a host, not {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"base_url must not have a query or fragment: {base_url!r}")
    try:
        _ = parts.port  # raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise ValueError(f"base_url has a bad port: {base_url!r}") from exc

    model = settings.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model is required: the model name the endpoint expects")

    api_key_env = settings.get("api_key_env")
    if api_key_env is not None and (
        not isinstance(api_key_env, str) or not ENV_NAME_RE.match(api_key_env)
    ):
        # The key itself must never land in the database, so only a variable's name is taken.
        raise ValueError(
            "api_key_env must be the NAME of an environment variable holding the key "
            "(e.g. OPENAI_API_KEY), not the key itself"
        )

    validated = {
        "base_url": base_url.rstrip("/"),
        "model": model.strip(),
        "api_key_env": api_key_env,
        "timeout_s": _number(settings, "timeout_s", 0.001, 3600),
        "max_concurrency": _integer(settings, "max_concurrency", 1, 256),
        "max_retries": _integer(settings, "max_retries", 0, 20),
        "backoff_base_s": _number(settings, "backoff_base_s", 0, 600),
        "backoff_max_s": _number(settings, "backoff_max_s", 0, 3600),
    }
    if validated["backoff_max_s"] < validated["backoff_base_s"]:
        raise ValueError("backoff_max_s must be at least backoff_base_s")
    return validated


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[:EXCERPT_CHARS] + "…"


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asks us to wait: ``retry-after-ms``, or ``Retry-After`` in seconds
    (fractions accepted) or as an HTTP date; None when absent or unreadable."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def parse_completion(data: Any) -> ChatOutcome:
    """A ChatOutcome from a chat-completions JSON body (latency left for the caller)."""
    if not isinstance(data, dict):
        return ChatOutcome(error="malformed response: body is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ChatOutcome(error=f"malformed response: no choices in {_excerpt(str(data))}")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        return ChatOutcome(error="malformed response: choices[0] has no message")
    content = message.get("content")
    refusal = message.get("refusal")
    if not isinstance(content, str):
        # OpenAI puts a refusal in its own field, with content null; for a refusal study
        # that text is the answer.
        if isinstance(refusal, str):
            content = refusal
        else:
            return ChatOutcome(error="malformed response: choices[0].message.content is missing")
    finish_reason = choice.get("finish_reason")
    finish_reason = finish_reason if isinstance(finish_reason, str) else None
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}

    def count(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    raw: dict[str, Any] = {
        "id": data.get("id"),
        "model": data.get("model"),
        "usage": usage,
        "finish_reason": finish_reason,
    }
    if data.get("system_fingerprint"):
        raw["system_fingerprint"] = data["system_fingerprint"]
    if isinstance(refusal, str):
        raw["refusal"] = refusal
    return ChatOutcome(
        text=content,
        prompt_tokens=count("prompt_tokens"),
        completion_tokens=count("completion_tokens"),
        finish_reason=finish_reason,
        raw=raw,
    )


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, even where a loop already runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # asyncio.run refuses to nest; a fresh thread has no loop of its own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class OpenAICompatibleBackend:
    """Sends chat requests concurrently (at most ``max_concurrency`` in flight) so that the
    server can batch them; retries rate limits and transient failures with backoff."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_concurrency: int = 8,
        max_retries: int = 5,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.timeout_s = timeout_s
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        # Enough work per task to keep every connection busy while results trickle back.
        self.preferred_batch_size = 4 * max_concurrency

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def generate(self, requests: list[ChatRequest]) -> list[ChatOutcome]:
        if not requests:
            return []
        if not host_allowed(self.base_url):
            # Defence in depth: the registry refuses such models, but a row changed behind
            # its back must still never get a request, let alone an API key.
            try:
                check_host_allowed(self.base_url)
            except HostNotAllowed as exc:
                return [ChatOutcome(error=str(exc), retryable=False) for _ in requests]
        headers: dict[str, str] = {}
        if self.api_key_env:
            # Read at call time, so a rotated key needs no re-registration of the model.
            key = os.environ.get(self.api_key_env)
            if not key:
                message = f"environment variable {self.api_key_env} (api_key_env) is not set"
                return [ChatOutcome(error=message, retryable=False) for _ in requests]
            headers["Authorization"] = f"Bearer {key}"
        return run_coroutine(self._generate_all(requests, headers))

    def body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body for one request."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in request.messages],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.min_tokens is not None:
            body["min_tokens"] = request.min_tokens  # a vLLM extension; others ignore it
        return body

    def backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (attempt counts from 0)."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2**attempt)
        # "Equal jitter": never less than half the step, spread so clients don't stampede.
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    async def _generate_all(
        self, requests: list[ChatRequest], headers: dict[str, str]
    ) -> list[ChatOutcome]:
        semaphore = asyncio.Semaphore(self.max_concurrency)
        limits = httpx.Limits(
            max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency
        )
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s), limits=limits, headers=headers
        ) as client:
            tasks = [self._guarded(client, semaphore, r) for r in requests]
            return list(await asyncio.gather(*tasks))

    async def _guarded(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, request: ChatRequest
    ) -> ChatOutcome:
        try:
            return await self._one(client, semaphore, request)
        except Exception as exc:  # one request's surprise must not fail its neighbours
            logger.exception("unexpected error calling %s", self.url)
            return ChatOutcome(error=f"unexpected error: {type(exc).__name__}: {exc}")

    async def _one(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, request: ChatRequest
    ) -> ChatOutcome:
        body = self.body(request)
        attempts = self.max_retries + 1
        reason = "no attempt made"
        for attempt in range(attempts):
            retry_after: float | None = None
            # The slot is held only while a request is on the wire, not while backing off.
            async with semaphore:
                started = time.perf_counter()
                try:
                    response = await client.post(self.url, json=body)
                except httpx.TimeoutException as exc:
                    reason = f"timed out after {self.timeout_s:g}s ({type(exc).__name__})"
                    response = None
                except httpx.TransportError as exc:
                    reason = f"connection error: {type(exc).__name__}: {exc}"
                    response = None
                latency_ms = round((time.perf_counter() - started) * 1000)

            if response is not None:
                if response.status_code == 200:
                    try:
                        data = response.json()
                    except ValueError:
                        return ChatOutcome(
                            error=f"malformed response: not JSON: {_excerpt(response.text)}",
                            latency_ms=latency_ms,
                        )
                    outcome = parse_completion(data)
                    return ChatOutcome(
                        text=outcome.text,
                        error=outcome.error,
                        retryable=False,
                        prompt_tokens=outcome.prompt_tokens,
                        completion_tokens=outcome.completion_tokens,
                        latency_ms=latency_ms,
                        finish_reason=outcome.finish_reason,
                        raw=outcome.raw,
                    )
                reason = f"HTTP {response.status_code}: {_excerpt(response.text)}"
                if response.status_code not in RETRY_STATUSES:
                    return ChatOutcome(
                        error=f"{reason} (from {self.url})", retryable=False, latency_ms=latency_ms
                    )
                retry_after = parse_retry_after(response.headers)

            if attempt + 1 < attempts:
                delay = self.backoff_delay(attempt, retry_after)
                logger.warning(
                    "retrying %s in %.2fs (attempt %d of %d): %s",
                    self.url,
                    delay,
                    attempt + 2,
                    attempts,
                    reason,
                )
                await asyncio.sleep(delay)
        return ChatOutcome(
            error=f"gave up after {attempts} attempt(s): {reason}",
            retryable=True,
            latency_ms=latency_ms,
        )
