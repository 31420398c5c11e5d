"""The contract every model backend meets: a batch of chat requests in, one outcome each out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol

BACKENDS = ("openai", "transformers")

# What PostgreSQL stores neither in text nor in JSON: NUL, and lone surrogates (not Unicode).
_UNSTORABLE_IN_OUTPUT = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT_CHARACTER = "\ufffd"


@dataclass(frozen=True)
class ChatRequest:
    """One chat completion to produce. ``messages`` use the OpenAI shape: role + content."""

    messages: tuple[dict[str, str], ...]
    max_tokens: int = 512
    temperature: float = 0.0
    seed: int | None = None
    # Forces exactly this many new tokens where the backend can (benchmarks only).
    min_tokens: int | None = None


@dataclass(frozen=True)
class ChatOutcome:
    """What came back for one request: text, or an error saying whether a retry may help."""

    text: str | None = None
    error: str | None = None
    retryable: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    finish_reason: str | None = None
    raw: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Any backend's text is stored as it came, but for what the database cannot hold: a
        # random-weight model (or a broken endpoint) answering NUL must not crash the job that
        # stores it. Each such character becomes U+FFFD, and raw counts how many did.
        if self.text is not None:
            text, replaced = _UNSTORABLE_IN_OUTPUT.subn(REPLACEMENT_CHARACTER, self.text)
            if replaced:
                object.__setattr__(self, "text", text)
                object.__setattr__(self, "raw", {**self.raw, "replaced_characters": replaced})

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None


class Backend(Protocol):
    #: How many requests one Celery batch task should hand to ``generate`` at once.
    preferred_batch_size: int

    def generate(self, requests: list[ChatRequest]) -> list[ChatOutcome]:
        """Answer every request, in order; one request failing must not fail the others."""
        ...


def check_setting_keys(settings: object, allowed: frozenset[str]) -> None:
    """Settings must be a mapping of known keys; a typo is named with the allowed ones."""
    if not isinstance(settings, dict):
        raise ValueError("settings must be a mapping")
    unknown = sorted(set(settings) - allowed)
    if unknown:
        raise ValueError(
            f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def whole_number_setting(settings: dict, name: str, default: int, low: int, high: int) -> int:
    """A whole-number setting within [low, high], or ValueError naming it."""
    value = settings.get(name, default)
    # bool is an int subclass; True as a batch size is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, not {value}")
    return value


def validate_backend_settings(backend: str, settings: dict) -> dict:
    """Check and normalise a backend's settings; raises ValueError naming the bad field."""
    if backend == "openai":
        from studies.generation.backends.openai_compat import validate_settings
    elif backend == "transformers":
        from studies.generation.backends.transformers_local import validate_settings
    else:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return validate_settings(settings)


def build_backend(backend: str, settings: dict) -> Backend:
    """The backend object for a registered model (imports heavy libraries only when needed)."""
    settings = validate_backend_settings(backend, settings)
    if backend == "openai":
        from studies.generation.backends.openai_compat import OpenAICompatibleBackend

        return OpenAICompatibleBackend(**settings)
    from studies.generation.backends.transformers_local import TransformersBackend

    return TransformersBackend(**settings)
