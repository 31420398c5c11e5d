"""Backend that runs local Hugging Face transformers weights inside the worker, in batches."""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from studies.generation.backends.base import (
    ChatOutcome,
    ChatRequest,
    check_setting_keys,
    whole_number_setting,
)

logger = logging.getLogger(__name__)

DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+)$")
DTYPES = ("auto", "float32", "float16", "bfloat16")
DEFAULTS: dict[str, Any] = {
    "device": "auto",
    "dtype": "auto",
    "batch_size": 8,
    "max_input_tokens": 2048,
}
ALLOWED_KEYS = frozenset({"path", *DEFAULTS})


def _int_setting(settings: dict, name: str, low: int, high: int) -> int:
    return whole_number_setting(settings, name, DEFAULTS[name], low, high)


def validate_settings(settings: dict) -> dict:
    """Check and fill in a transformers backend's settings; raises ValueError naming the field.

    ``path`` must be an absolute path, but whether it exists is not checked here: settings are
    validated where a model is registered (the web host), while the weights live on the GPU
    worker. A path missing on the worker gives each request a non-retryable error outcome.
    """
    check_setting_keys(settings, ALLOWED_KEYS)
    path = settings.get("path")
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ValueError("path is required: a local directory with config, weights and tokenizer")
    if not isinstance(path, str):
        raise ValueError(f"path must be a string, not {type(path).__name__}")
    if not os.path.isabs(path):
        # A relative path would depend on the worker's working directory.
        raise ValueError(f"path must be absolute, not {path!r}")

    device = settings.get("device", DEFAULTS["device"])
    if not isinstance(device, str) or not DEVICE_RE.match(device):
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not {device!r}")
    dtype = settings.get("dtype", DEFAULTS["dtype"])
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")

    return {
        "path": path,
        "device": device,
        "dtype": dtype,
        "batch_size": _int_setting(settings, "batch_size", 1, 512),
        "max_input_tokens": _int_setting(settings, "max_input_tokens", 1, 1_000_000),
    }


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when a GPU is visible, else 'cpu'; anything else as given."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> str:
    """'auto' → bfloat16 on a GPU (halves memory, native on recent GPUs), float32 on CPU."""
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    return dtype


@dataclass
class LoadedModel:
    """A model and tokenizer loaded once per process, with a lock so one generation (or reward
    forward pass) runs at a time (the global torch RNG, which seeds sampling, is shared by
    every thread)."""

    model: Any
    tokenizer: Any
    device: str
    dtype: str
    lock: threading.Lock


# Keyed by (auto class, real path, resolved device, resolved dtype): generation models and
# reward models (modellab.rewards.scorers) share it, each loaded once per worker process.
_CACHE: dict[tuple[str, str, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


class ModelLoadError(Exception):
    """The weights could not be loaded; ``retryable`` says whether another try may help."""

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def load_pretrained(
    path: str,
    device: str = "auto",
    dtype: str = "auto",
    *,
    auto_class: str = "AutoModelForCausalLM",
    what: str = "model",
    log_as: str = "",
    prepare: Callable[[Any, Any], None] | None = None,
) -> LoadedModel:
    """The tokenizer and the ``transformers.<auto_class>`` model at ``path``, loaded at most
    once per process and then reused.

    ``device`` and ``dtype`` are resolved ('auto' by what the worker has); the cache key is
    (auto_class, real path, resolved device, resolved dtype). Only local files are read
    (``local_files_only=True``): hubs are unreachable from the workers. A tokenizer without a
    pad token pads with its end-of-sequence token; then ``prepare(model, tokenizer)`` runs once
    (checks that raise ModelLoadError, padding settings). ``what`` names the kind of model in
    the error for weights that do not load, ``log_as`` in the log line.
    """
    import torch

    device = resolve_device(device)
    dtype = resolve_dtype(dtype, device)
    key = (auto_class, os.path.realpath(path), device, dtype)
    with _CACHE_LOCK:
        loaded = _CACHE.get(key)
        if loaded is not None:
            return loaded
        if not os.path.isdir(path):
            raise ModelLoadError(f"model path {path!r} is not a directory on this worker")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but no CUDA GPU is available")
        import transformers

        started = time.perf_counter()
        try:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
            model = getattr(transformers, auto_class).from_pretrained(
                path, local_files_only=True, dtype=getattr(torch, dtype)
            )
            model.to(device)
        except torch.OutOfMemoryError as exc:
            raise ModelLoadError(f"out of memory loading {path!r}: {exc}", retryable=True) from exc
        except Exception as exc:
            raise ModelLoadError(
                f"could not load {what} from {path!r}: {type(exc).__name__}: {exc}"
            ) from exc
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if prepare is not None:
            prepare(model, tokenizer)
        model.eval()
        loaded = LoadedModel(model, tokenizer, device, dtype, threading.Lock())
        _CACHE[key] = loaded
        logger.info(
            "loaded %s%s on %s as %s in %.1fs",
            f"{log_as} " if log_as else "",
            path,
            device,
            dtype,
            time.perf_counter() - started,
        )
        return loaded


def _pad_left(model: Any, tokenizer: Any) -> None:
    # Left padding keeps every prompt's last token next to the generated ones.
    tokenizer.padding_side = "left"


def load_model(path: str, device: str = "auto", dtype: str = "auto") -> LoadedModel:
    """The causal language model and tokenizer at ``path`` (see ``load_pretrained``), padding
    on the left for batched generation."""
    return load_pretrained(path, device, dtype, prepare=_pad_left)


def uses_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def render_prompt(tokenizer: Any, messages: tuple[dict[str, str], ...] | list) -> str:
    """The prompt text for a conversation, ending where the assistant's answer starts.

    Uses the tokenizer's chat template. A tokenizer without one (base models) gets a plain
    fallback: one "role: content" line per message, then "assistant:".
    """
    messages = [dict(m) for m in messages]
    if uses_chat_template(tokenizer):
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    lines = [f"{m['role']}: {m['content']}" for m in messages]
    return "\n".join([*lines, "assistant:"])


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    if eos is None:
        return set()
    return set(eos) if isinstance(eos, list | tuple) else {int(eos)}


def _error(message: str, retryable: bool = False, **raw: Any) -> ChatOutcome:
    return ChatOutcome(error=message, retryable=retryable, raw=raw)


class TransformersBackend:
    """Generates with local weights, ``batch_size`` requests per ``model.generate`` call.

    Notes on what the numbers mean here:
    - Requests are grouped by (max_tokens, min_tokens, temperature), keeping their order, and
      each group is cut into chunks of ``batch_size``; one chunk is one ``generate`` call.
    - Seeds: a chunk is seeded with ``torch.manual_seed`` from the first request in it that
      has a seed, so every request in the chunk shares that seed; a sampled output is
      reproducible for the same chunk composition, not per request.
    - Sampling (temperature > 0) is plain temperature sampling (top_k off, top_p 1), what an
      OpenAI-compatible endpoint does by default, so both backends mean the same by a
      temperature; temperature 0 is greedy.
    - ``latency_ms`` is the chunk's wall time divided evenly among its requests.
    - ``completion_tokens`` counts new tokens up to and including the first EOS (not the
      padding after it); ``prompt_tokens`` counts the prompt's non-padding tokens.
    """

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
        self.preferred_batch_size = batch_size

    def load(self) -> LoadedModel:
        """Load (or reuse) the model now, e.g. to warm a worker; raises ModelLoadError."""
        return load_model(self.path, self.device, self.dtype)

    def generate(self, requests: list[ChatRequest]) -> list[ChatOutcome]:
        if not requests:
            return []
        try:
            loaded = self.load()
        except ModelLoadError as exc:
            logger.error("transformers backend: %s", exc)
            return [_error(str(exc), exc.retryable) for _ in requests]

        outcomes: list[ChatOutcome | None] = [None] * len(requests)
        pending: list[tuple[int, str]] = []
        for index, request in enumerate(requests):
            try:
                prompt = render_prompt(loaded.tokenizer, request.messages)
                encoded = loaded.tokenizer(prompt, add_special_tokens=self._add_specials(loaded))
                n_tokens = len(encoded["input_ids"])
            except Exception as exc:  # a bad conversation must not fail the batch
                outcomes[index] = _error(f"could not build prompt: {type(exc).__name__}: {exc}")
                continue
            if n_tokens > self.max_input_tokens:
                # Refused rather than truncated: cutting a stimulus would change the study.
                outcomes[index] = _error(
                    f"prompt has {n_tokens} tokens, more than max_input_tokens "
                    f"({self.max_input_tokens})"
                )
                continue
            pending.append((index, prompt))

        for chunk in self._chunks(requests, pending):
            results = self._generate_chunk(loaded, [requests[i] for i, _ in chunk], chunk)
            for (index, _), outcome in zip(chunk, results, strict=True):
                outcomes[index] = outcome
        return [o if o is not None else _error("no outcome produced") for o in outcomes]

    @staticmethod
    def _add_specials(loaded: LoadedModel) -> bool:
        # A chat template writes BOS and friends itself; the plain fallback needs the
        # tokenizer to add them.
        return not uses_chat_template(loaded.tokenizer)

    def _chunks(
        self, requests: list[ChatRequest], pending: list[tuple[int, str]]
    ) -> list[list[tuple[int, str]]]:
        # One generate call can only use one set of generation parameters.
        groups: dict[tuple, list[tuple[int, str]]] = {}
        for index, prompt in pending:
            r = requests[index]
            groups.setdefault((r.max_tokens, r.min_tokens, r.temperature), []).append(
                (index, prompt)
            )
        return [
            group[start : start + self.batch_size]
            for group in groups.values()
            for start in range(0, len(group), self.batch_size)
        ]

    def _generate_chunk(
        self, loaded: LoadedModel, chunk_requests: list[ChatRequest], chunk: list[tuple[int, str]]
    ) -> list[ChatOutcome]:
        import torch

        first = chunk_requests[0]
        seed = next((r.seed for r in chunk_requests if r.seed is not None), None)
        raw_base = {
            "backend": "transformers",
            "path": self.path,
            "device": loaded.device,
            "dtype": loaded.dtype,
            "chunk_size": len(chunk),
            "seed": seed,
        }
        kwargs: dict[str, Any] = {"max_new_tokens": first.max_tokens}
        if first.min_tokens is not None:
            kwargs["min_new_tokens"] = first.min_tokens
        if first.temperature > 0:
            kwargs.update(do_sample=True, temperature=first.temperature, top_k=0, top_p=1.0)
        else:
            kwargs["do_sample"] = False
        tokenizer, model = loaded.tokenizer, loaded.model
        try:
            with loaded.lock, torch.inference_mode():
                # Timed inside the lock: waiting for another thread's chunk is not latency.
                started = time.perf_counter()
                if seed is not None:
                    torch.manual_seed(seed)
                encoded = tokenizer(
                    [prompt for _, prompt in chunk],
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=self._add_specials(loaded),
                ).to(loaded.device)
                output = model.generate(**encoded, pad_token_id=tokenizer.pad_token_id, **kwargs)
        except torch.OutOfMemoryError as exc:
            logger.warning("out of memory generating a chunk of %d: %s", len(chunk), exc)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            message = f"out of memory generating a batch of {len(chunk)}: {exc}"
            return [_error(message, True, **raw_base) for _ in chunk]
        except Exception as exc:
            logger.exception("generation failed for a chunk of %d", len(chunk))
            message = f"generation failed: {type(exc).__name__}: {exc}"
            return [_error(message, False, **raw_base) for _ in chunk]
        latency_ms = round((time.perf_counter() - started) * 1000 / len(chunk))

        input_len = encoded["input_ids"].shape[1]
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        eos_ids = _eos_ids(model, tokenizer)
        outcomes = []
        for row, prompt_tokens in zip(output[:, input_len:].tolist(), prompt_lengths, strict=True):
            stop_at = next((i for i, t in enumerate(row) if t in eos_ids), None)
            if stop_at is None:
                # No EOS: the row ran to max_new_tokens (or to the chunk's longest row,
                # which then also ends with tokens of its own, never padding).
                new_tokens, finish_reason = row, "length"
            else:
                new_tokens, finish_reason = row[: stop_at + 1], "stop"
            outcomes.append(
                ChatOutcome(
                    text=tokenizer.decode(new_tokens, skip_special_tokens=True),
                    prompt_tokens=int(prompt_tokens),
                    completion_tokens=len(new_tokens),
                    latency_ms=latency_ms,
                    finish_reason=finish_reason,
                    raw={**raw_base, "finish_reason": finish_reason},
                )
            )
        return outcomes
