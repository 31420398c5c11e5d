"""The local transformers backend on a tiny random-weight Llama built on disk by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from studies.generation.backends.base import (  # noqa: E402 -- after the importorskip guards
    ChatRequest,
    build_backend,
    validate_backend_settings,
)
from studies.generation.backends.transformers_local import (  # noqa: E402
    TransformersBackend,
    load_model,
    render_prompt,
    validate_settings,
)
from tests.generation.tiny_model import build_tiny_chat_model  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def eos_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EOS nudged just enough that greedy answers end after differing lengths."""
    return build_tiny_chat_model(tmp_path_factory.mktemp("tiny-eos"), eos_bias=0.2)


def local(path: Path, **settings: object) -> TransformersBackend:
    built = build_backend("transformers", {"path": str(path), "device": "cpu", **settings})
    assert isinstance(built, TransformersBackend)
    return built


def ask(content: str, **kwargs: object) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": content},), **kwargs)


QUESTIONS = [ask("question " * (i + 1), max_tokens=12) for i in range(6)]


def test_six_requests_in_two_chunks_come_back_in_order(model_dir: Path) -> None:
    chat = local(model_dir, batch_size=4)
    assert chat.preferred_batch_size == 4
    outcomes = chat.generate(QUESTIONS)
    assert len(outcomes) == 6 and all(o.ok for o in outcomes)
    assert [o.raw["chunk_size"] for o in outcomes] == [4, 4, 4, 4, 2, 2]
    # Longer questions, longer prompts: the counts follow the requests' order.
    prompt_tokens = [o.prompt_tokens for o in outcomes]
    assert prompt_tokens == sorted(prompt_tokens) and len(set(prompt_tokens)) == 6
    for outcome in outcomes:
        assert 1 <= outcome.completion_tokens <= 12
        assert outcome.latency_ms is not None and outcome.latency_ms >= 0
        assert outcome.finish_reason in ("stop", "length")
        assert outcome.raw["device"] == "cpu" and outcome.raw["dtype"] == "float32"
    # Each answer is the one its request gets alone: nothing was shuffled by batching.
    alone = local(model_dir, batch_size=1).generate(QUESTIONS)
    assert [o.text for o in outcomes] == [o.text for o in alone]


def test_greedy_is_deterministic_across_calls(model_dir: Path) -> None:
    chat = local(model_dir, batch_size=4)
    assert [o.text for o in chat.generate(QUESTIONS)] == [o.text for o in chat.generate(QUESTIONS)]


def test_seeded_sampling_repeats(model_dir: Path) -> None:
    chat = local(model_dir, batch_size=4)
    sampled = [ask(f"tell me {i}", max_tokens=10, temperature=1.0, seed=7) for i in range(3)]
    first = chat.generate(sampled)
    assert all(o.ok and o.raw["seed"] == 7 for o in first)
    assert [o.text for o in first] == [o.text for o in chat.generate(sampled)]
    reseeded = [
        ChatRequest(messages=r.messages, max_tokens=10, temperature=1.0, seed=8) for r in sampled
    ]
    assert [o.text for o in first] != [o.text for o in chat.generate(reseeded)]


def test_min_tokens_equal_to_max_tokens_gives_exactly_that_many(model_dir: Path) -> None:
    (outcome,) = local(model_dir).generate([ask("go on", max_tokens=9, min_tokens=9)])
    assert outcome.completion_tokens == 9 and outcome.finish_reason == "length"


def test_completion_tokens_stop_at_the_first_eos(eos_model_dir: Path) -> None:
    requests = [ask(f"question {i} " * (i + 1), max_tokens=20) for i in range(8)]
    batched = local(eos_model_dir, batch_size=8).generate(requests)
    lengths = [o.completion_tokens for o in batched]
    reasons = [o.finish_reason for o in batched]
    # Rows that ended early are counted to their EOS, not to the padding after it.
    assert "stop" in reasons and "length" in reasons
    assert all(n == 20 for n, r in zip(lengths, reasons, strict=True) if r == "length")
    assert any(n < 20 for n in lengths)
    alone = local(eos_model_dir, batch_size=1).generate(requests)
    assert lengths == [o.completion_tokens for o in alone]
    assert [o.text for o in batched] == [o.text for o in alone]


def test_min_tokens_hold_off_an_eager_eos(tmp_path: Path) -> None:
    eager = build_tiny_chat_model(tmp_path / "eager", eos_bias=2.0)
    chat = local(eager)
    (stopped,) = chat.generate([ask("hi", max_tokens=5)])
    assert stopped.ok and stopped.text == ""
    assert stopped.completion_tokens == 1 and stopped.finish_reason == "stop"
    (forced,) = chat.generate([ask("hi", max_tokens=5, min_tokens=3)])
    assert forced.completion_tokens == 4 and forced.finish_reason == "stop"


def test_model_is_loaded_once_per_process(model_dir: Path) -> None:
    first = local(model_dir).load()
    second = local(model_dir, batch_size=2).load()
    assert second.model is first.model and second.tokenizer is first.tokenizer
    # 'auto' resolves to float32 on CPU, the same weights as asked for by name.
    assert local(model_dir, dtype="auto").load().model is first.model
    assert load_model(str(model_dir), "cpu", "bfloat16").model is not first.model


def test_the_chat_template_builds_the_prompt(model_dir: Path) -> None:
    tokenizer = local(model_dir).load().tokenizer
    messages = (
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hello?"},
    )
    assert render_prompt(tokenizer, messages) == (
        "<s><system>: Be kind.\n<user>: Hello?\n<assistant>:"
    )


def test_without_a_chat_template_a_plain_prompt_is_used(tmp_path: Path) -> None:
    plain = build_tiny_chat_model(tmp_path / "plain")
    (plain / "chat_template.jinja").unlink()
    chat = local(plain)
    tokenizer = chat.load().tokenizer
    assert not tokenizer.chat_template
    messages = ({"role": "system", "content": "S"}, {"role": "user", "content": "U"})
    assert render_prompt(tokenizer, messages) == "system: S\nuser: U\nassistant:"
    (outcome,) = chat.generate([ChatRequest(messages=messages, max_tokens=3)])
    assert outcome.ok
    assert outcome.prompt_tokens == len(tokenizer("system: S\nuser: U\nassistant:")["input_ids"])


def test_a_prompt_over_max_input_tokens_fails_alone(model_dir: Path) -> None:
    chat = local(model_dir, max_input_tokens=40)
    short, long = chat.generate([ask("short", max_tokens=3), ask("word " * 100, max_tokens=3)])
    assert short.ok
    assert not long.ok and not long.retryable and "max_input_tokens" in long.error


def test_a_failing_chunk_gives_error_outcomes(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat = local(model_dir)
    model = chat.load().model

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(model, "generate", out_of_memory)
    outcomes = chat.generate([ask("a"), ask("b")])
    assert all(not o.ok and o.retryable and "out of memory" in o.error for o in outcomes)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("device-side assert")

    monkeypatch.setattr(model, "generate", broken)
    outcomes = chat.generate([ask("a")])
    assert not outcomes[0].retryable and "device-side assert" in outcomes[0].error


def test_a_missing_directory_is_an_error_outcome(tmp_path: Path) -> None:
    outcomes = local(tmp_path / "nowhere").generate([ask("a"), ask("b")])
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert not outcome.ok and not outcome.retryable
        assert "nowhere" in outcome.error and "not a directory" in outcome.error


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_cuda_without_a_gpu_is_an_error_outcome(model_dir: Path) -> None:
    (outcome,) = local(model_dir, device="cuda").generate([ask("a")])
    assert not outcome.ok and not outcome.retryable and "no CUDA GPU" in outcome.error


def test_settings_defaults() -> None:
    assert validate_backend_settings("transformers", {"path": "/models/x"}) == {
        "path": "/models/x",
        "device": "auto",
        "dtype": "auto",
        "batch_size": 8,
        "max_input_tokens": 2048,
    }


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({}, "path"),
        ({"path": ""}, "path"),
        ({"path": "relative/model"}, "path"),
        ({"path": 3}, "path"),
        ({"path": "/m", "device": "gpu"}, "device"),
        ({"path": "/m", "device": "cuda:x"}, "device"),
        ({"path": "/m", "dtype": "int8"}, "dtype"),
        ({"path": "/m", "batch_size": 0}, "batch_size"),
        ({"path": "/m", "batch_size": 513}, "batch_size"),
        ({"path": "/m", "batch_size": 2.5}, "batch_size"),
        ({"path": "/m", "max_input_tokens": 0}, "max_input_tokens"),
        ({"path": "/m", "model": "x"}, "model"),
    ],
)
def test_invalid_settings_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        validate_settings(settings)
