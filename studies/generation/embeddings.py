"""Texts into unit vectors with a registered embedding model (an endpoint or local weights)."""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
from typing import Any, Protocol

import httpx
import numpy as np

from studies.generation.backends import openai_compat, transformers_local
from studies.generation.backends.base import check_setting_keys, whole_number_setting
from studies.generation.hosts import HostNotAllowed, check_host_allowed
from studies.models import LanguageModel

logger = logging.getLogger(__name__)

#: Texts per ``/embeddings`` request unless the model's settings say otherwise.
OPENAI_BATCH_SIZE = 64
#: The chat backend's settings plus the number of texts sent in one request.
OPENAI_ALLOWED_KEYS = frozenset({*openai_compat.ALLOWED_KEYS, "batch_size"})
# The inputs a text encoder's forward pass may take; anything else a tokenizer adds is dropped.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class EmbeddingError(ValueError):
    """Texts could not be embedded; ``retryable`` says whether another try later may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def validate_settings(backend: str, settings: dict) -> dict:
    """Check and fill in an embedding model's settings; ValueError names the bad field.

    ``openai`` takes the chat backend's settings (base_url, model, api_key_env, timeout_s,
    max_concurrency, max_retries, backoff_base_s, backoff_max_s) and ``batch_size`` (texts per
    request); ``transformers`` takes the chat backend's (path, device, dtype, batch_size,
    max_input_tokens).
    """
    if backend == LanguageModel.Backend.OPENAI:
        check_setting_keys(settings, OPENAI_ALLOWED_KEYS)
        validated = openai_compat.validate_settings(
            {k: v for k, v in settings.items() if k != "batch_size"}
        )
        validated["batch_size"] = whole_number_setting(
            settings, "batch_size", OPENAI_BATCH_SIZE, 1, 2048
        )
        return validated
    if backend == LanguageModel.Backend.TRANSFORMERS:
        return transformers_local.validate_settings(settings)
    raise ValueError(
        f"backend must be one of {', '.join(LanguageModel.Backend.values)}, not {backend!r}"
    )


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per text, in order (not yet normalised); raises EmbeddingError."""
        ...


def _parse_embeddings(data: Any, expected: int, url: str) -> list[list[float]]:
    """The vectors of an ``/embeddings`` answer in input order (servers may answer out of
    order: each item carries the ``index`` of its input)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise EmbeddingError(
            f"malformed response from {url}: no 'data' list in "
            f"{openai_compat._excerpt(json.dumps(data))}"
        )
    if len(items) != expected:
        raise EmbeddingError(
            f"{url} returned {len(items)} embedding(s) for {expected} text(s) in one request"
        )
    by_index: dict[int, Any] = {}
    for item in items:
        index = item.get("index") if isinstance(item, dict) else None
        if isinstance(index, bool) or not isinstance(index, int):
            raise EmbeddingError(f"malformed response from {url}: an item has no whole 'index'")
        by_index[index] = item.get("embedding")
    if sorted(by_index) != list(range(expected)):
        raise EmbeddingError(
            f"malformed response from {url}: indices {sorted(by_index)} are not 0..{expected - 1}"
        )
    vectors = []
    for index in range(expected):
        vector = by_index[index]
        if not isinstance(vector, list) or not all(
            isinstance(x, int | float) and not isinstance(x, bool) for x in vector
        ):
            raise EmbeddingError(
                f"malformed response from {url}: embedding {index} is not a list of numbers "
                "(base64 encoding is not supported)"
            )
        vectors.append(vector)
    return vectors


class OpenAIEmbedder:
    """POSTs ``{"model", "input": [texts]}`` to ``{base_url}/embeddings``, ``batch_size`` texts
    a request, at most ``max_concurrency`` requests in flight, each retried with backoff on
    rate limits, server errors and lost connections as the chat backend does."""

    def __init__(self, *, batch_size: int = OPENAI_BATCH_SIZE, **settings: Any) -> None:
        # The chat backend holds the endpoint, its key's variable, limits and the backoff.
        self.endpoint = openai_compat.OpenAICompatibleBackend(**settings)
        self.batch_size = batch_size

    @property
    def url(self) -> str:
        return f"{self.endpoint.base_url}/embeddings"

    def embed(self, texts: list[str]) -> list[list[float]]:
        try:
            # Checked at call time too: a row changed behind the registry's back must never
            # get a request, let alone an API key.
            check_host_allowed(self.endpoint.base_url)
        except HostNotAllowed as exc:
            raise EmbeddingError(str(exc)) from exc
        headers: dict[str, str] = {}
        if self.endpoint.api_key_env:
            # Read at call time, so a rotated key needs no re-registration of the model.
            key = os.environ.get(self.endpoint.api_key_env)
            if not key:
                raise EmbeddingError(
                    f"environment variable {self.endpoint.api_key_env} (api_key_env) is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        batches = [
            texts[start : start + self.batch_size]
            for start in range(0, len(texts), self.batch_size)
        ]
        results = openai_compat.run_coroutine(self._embed_all(batches, headers))
        vectors: list[list[float]] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            vectors.extend(result)
        return vectors

    async def _embed_all(
        self, batches: list[list[str]], headers: dict[str, str]
    ) -> list[list[list[float]] | BaseException]:
        semaphore = asyncio.Semaphore(self.endpoint.max_concurrency)
        concurrency = self.endpoint.max_concurrency
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(self.endpoint.timeout_s), limits=limits, headers=headers
        ) as client:
            tasks = [self._batch(client, semaphore, batch) for batch in batches]
            # Every batch runs to its end, so no request is left half-sent when one fails.
            return list(await asyncio.gather(*tasks, return_exceptions=True))

    async def _batch(
        self, client: httpx.AsyncClient, semaphore: asyncio.Semaphore, texts: list[str]
    ) -> list[list[float]]:
        body = {"model": self.endpoint.model, "input": texts}
        attempts = self.endpoint.max_retries + 1
        reason = "no attempt made"
        for attempt in range(attempts):
            retry_after: float | None = None
            # The slot is held only while a request is on the wire, not while backing off.
            async with semaphore:
                try:
                    response = await client.post(self.url, json=body)
                except httpx.TimeoutException as exc:
                    reason = f"timed out after {self.endpoint.timeout_s:g}s ({type(exc).__name__})"
                    response = None
                except httpx.TransportError as exc:
                    reason = f"connection error: {type(exc).__name__}: {exc}"
                    response = None
            if response is not None:
                if response.status_code == 200:
                    try:
                        data = response.json()
                    except ValueError:
                        raise EmbeddingError(
                            f"malformed response from {self.url}: not JSON: "
                            f"{openai_compat._excerpt(response.text)}"
                        ) from None
                    return _parse_embeddings(data, len(texts), self.url)
                reason = f"HTTP {response.status_code}: {openai_compat._excerpt(response.text)}"
                if response.status_code not in openai_compat.RETRY_STATUSES:
                    raise EmbeddingError(f"{reason} (from {self.url})")
                retry_after = openai_compat.parse_retry_after(response.headers)
            if attempt + 1 < attempts:
                delay = self.endpoint.backoff_delay(attempt, retry_after)
                logger.warning(
                    "retrying %s in %.2fs (attempt %d of %d): %s",
                    self.url,
                    delay,
                    attempt + 2,
                    attempts,
                    reason,
                )
                await asyncio.sleep(delay)
        raise EmbeddingError(
            f"{self.url} gave up after {attempts} attempt(s): {reason}", retryable=True
        )


def _pad_right(model: Any, tokenizer: Any) -> None:
    # Positions count from the first token; left padding would shift a decoder's positions.
    tokenizer.padding_side = "right"


class TransformersEmbedder:
    """Mean of the last hidden states over each text's tokens (padding masked out),
    ``batch_size`` texts per forward pass. A text longer than ``max_input_tokens`` (or the
    model's own limit) is cut there: its vector stands for its start."""

    def __init__(
        self,
        *,
        path: str,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 8,
        max_input_tokens: int = 2048,
    ) -> None:
        self.path = path
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_input_tokens = max_input_tokens

    def load(self) -> transformers_local.LoadedModel:
        """Load (or reuse: once per process) the encoder; raises ModelLoadError."""
        return transformers_local.load_pretrained(
            self.path,
            self.device,
            self.dtype,
            auto_class="AutoModel",
            what="embedding model",
            log_as="embedding model",
            prepare=_pad_right,
        )

    def max_length(self, loaded: transformers_local.LoadedModel) -> int:
        """Tokens per text: the setting, or less where the model has fewer positions."""
        limits = [self.max_input_tokens]
        positions = getattr(loaded.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        # Tokenizers without a limit report a huge sentinel (about 1e30).
        tokenizer_limit = getattr(loaded.tokenizer, "model_max_length", None)
        if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 1_000_000:
            limits.append(tokenizer_limit)
        return min(limits)

    def embed(self, texts: list[str]) -> list[list[float]]:
        import torch

        try:
            loaded = self.load()
        except transformers_local.ModelLoadError as exc:
            raise EmbeddingError(str(exc), retryable=exc.retryable) from exc
        max_length = self.max_length(loaded)
        accepted = inspect.signature(loaded.model.forward).parameters
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = texts[start : start + self.batch_size]
            try:
                with loaded.lock, torch.inference_mode():
                    encoded = loaded.tokenizer(
                        chunk,
                        return_tensors="pt",
                        padding=True,
                        truncation=True,
                        max_length=max_length,
                    ).to(loaded.device)
                    inputs = {k: v for k, v in encoded.items() if k in MODEL_INPUTS}
                    inputs = {k: v for k, v in inputs.items() if k in accepted}
                    hidden = loaded.model(**inputs).last_hidden_state.float()
                    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
                    vectors.extend(pooled.cpu().tolist())
            except torch.OutOfMemoryError as exc:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise EmbeddingError(
                    f"out of memory embedding a batch of {len(chunk)}: {exc}", retryable=True
                ) from exc
            except Exception as exc:
                logger.exception("embedding failed for a batch of %d", len(chunk))
                raise EmbeddingError(
                    f"embedding with {self.path!r} failed: {type(exc).__name__}: {exc}"
                ) from exc
        return vectors


# One embedder per worker process and model settings: local weights load once and stay.
_embedders: dict[tuple[str, str], Embedder] = {}


def embedder_for(model: LanguageModel) -> Embedder:
    """The (cached) embedder of an embedding model; ValueError on bad settings."""
    key = (model.backend, json.dumps(model.backend_settings, sort_keys=True))
    if key not in _embedders:
        settings = validate_settings(model.backend, model.backend_settings)
        if model.backend == LanguageModel.Backend.OPENAI:
            _embedders[key] = OpenAIEmbedder(**settings)
        else:
            _embedders[key] = TransformersEmbedder(**settings)
    return _embedders[key]


def _unit_vectors(vectors: Any, expected: int, name: str) -> list[list[float]]:
    """The vectors scaled to length 1, after checking there is one per text, all alike."""
    if not isinstance(vectors, list) or len(vectors) != expected:
        got = len(vectors) if isinstance(vectors, list) else type(vectors).__name__
        raise EmbeddingError(f"model '{name}' returned {got} vector(s) for {expected} text(s)")
    lengths = {len(v) for v in vectors}
    if len(lengths) != 1 or 0 in lengths:
        raise EmbeddingError(
            f"model '{name}' returned vectors of differing or zero length: {sorted(lengths)}"
        )
    array = np.asarray(vectors, dtype=np.float64)
    if not np.isfinite(array).all():
        raise EmbeddingError(f"model '{name}' returned a vector with NaN or infinite values")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    zero = [int(i) for i in np.flatnonzero(norms[:, 0] == 0)]
    if zero:
        # A zero vector has no direction, so no similarity to anything can be read from it.
        raise EmbeddingError(f"model '{name}' returned a zero vector for text(s) {zero}")
    return (array / norms).tolist()


def embed_texts(model: LanguageModel, texts: list[str]) -> list[list[float]]:
    """One L2-normalised vector (length 1, so a dot product is the cosine) per text, in order.

    ``model`` must be an embedding model of the registry (kind ``embedding``); it is called
    from the process that runs this (a task on ``model.queue`` where local weights live).
    Raises EmbeddingError (a ValueError) with a clear message: not an embedding model, bad
    settings, an empty text, the endpoint refusing or down after its retries, or a wrong count
    or shape of vectors; ``exc.retryable`` says whether trying again later may help.
    """
    if model.kind != LanguageModel.Kind.EMBEDDING:
        raise EmbeddingError(
            f"'{model.name}' is a {model.get_kind_display().lower()}, not an embedding model; "
            "choose one registered with kind 'embedding'"
        )
    texts = list(texts)
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise EmbeddingError(f"texts must be strings; item(s) {bad} are not")
    # An empty text has no tokens to pool (and endpoints refuse it): nothing to compare.
    empty = [i for i, text in enumerate(texts) if not text.strip()]
    if empty:
        raise EmbeddingError(f"text(s) {empty} are empty; only texts with words can be embedded")
    if not texts:
        return []
    try:
        embedder = embedder_for(model)
    except ValueError as exc:
        raise EmbeddingError(f"model '{model.name}' has bad settings: {exc}") from exc
    vectors = embedder.embed(texts)
    return _unit_vectors(vectors, len(texts), model.name)


__all__ = ["EmbeddingError", "embed_texts", "embedder_for", "validate_settings"]
