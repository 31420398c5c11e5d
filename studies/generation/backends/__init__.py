"""Model backends: OpenAI-compatible HTTP endpoints and local transformers weights."""

from studies.generation.backends.base import (
    Backend,
    ChatOutcome,
    ChatRequest,
    build_backend,
    validate_backend_settings,
)

__all__ = ["Backend", "ChatOutcome", "ChatRequest", "build_backend", "validate_backend_settings"]
