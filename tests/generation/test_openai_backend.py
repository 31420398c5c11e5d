"""The OpenAI-compatible backend against a scripted loopback chat-completions server."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from studies.generation.backends.base import (
    ChatRequest,
    build_backend,
    validate_backend_settings,
)
from studies.generation.backends.openai_compat import (
    OpenAICompatibleBackend,
    parse_completion,
    parse_retry_after,
    validate_settings,
)
from tests.generation.chat_server import ChatServer, RecordedRequest, Reply


def backend(server: ChatServer, **settings: object) -> OpenAICompatibleBackend:
    """A backend on the test server, with tiny backoffs so retries cost milliseconds."""
    merged = {
        "base_url": server.url,
        "model": "test-model",
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        **settings,
    }
    built = build_backend("openai", merged)
    assert isinstance(built, OpenAICompatibleBackend)
    return built


def ask(content: str, **kwargs: object) -> ChatRequest:
    return ChatRequest(messages=({"role": "user", "content": content},), **kwargs)


def test_request_shape_and_parsed_answer() -> None:
    with ChatServer() as server:
        first, second = backend(server).generate(
            [
                ChatRequest(
                    messages=(
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "How do locks work?"},
                    ),
                    max_tokens=64,
                    temperature=0.7,
                    seed=11,
                ),
                ask("second", max_tokens=5, min_tokens=5),
            ]
        )
    bodies = {r.body["messages"][-1]["content"]: r for r in server.requests}
    with_seed = bodies["How do locks work?"]
    assert with_seed.method == "POST"
    assert with_seed.path == "/v1/chat/completions"
    assert with_seed.body == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "How do locks work?"},
        ],
        "max_tokens": 64,
        "temperature": 0.7,
        "seed": 11,
    }
    assert "authorization" not in with_seed.headers
    without_seed = bodies["second"].body
    assert "seed" not in without_seed
    assert without_seed["min_tokens"] == 5 and without_seed["temperature"] == 0.0

    assert first.ok and first.text == "reply to: How do locks work?"
    assert first.finish_reason == "stop"
    assert first.prompt_tokens == 6 and first.completion_tokens == 6
    assert first.latency_ms is not None and first.latency_ms >= 0
    assert set(first.raw) >= {"id", "model", "usage", "finish_reason"}
    assert first.raw["model"] == "test-model"
    assert second.text == "reply to: second"


def test_api_key_comes_from_the_named_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RL_TEST_KEY", "sk-secret-123")
    with ChatServer() as server:
        (outcome,) = backend(server, api_key_env="RL_TEST_KEY").generate([ask("hi")])
    assert outcome.ok
    assert server.requests[0].headers["authorization"] == "Bearer sk-secret-123"


def test_missing_key_variable_fails_every_request_without_sending(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RL_TEST_MISSING_KEY", raising=False)
    with ChatServer() as server:
        outcomes = backend(server, api_key_env="RL_TEST_MISSING_KEY").generate([ask("a"), ask("b")])
    assert server.requests == []
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert not outcome.ok and not outcome.retryable
        assert "RL_TEST_MISSING_KEY" in outcome.error and "not set" in outcome.error


def test_retries_429_honouring_retry_after_then_500_then_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with ChatServer() as server:
        server.enqueue(
            Reply(status=429, headers={"Retry-After": "0.3"}),
            Reply(status=500),
        )
        with caplog.at_level(logging.WARNING):
            (outcome,) = backend(server, backoff_max_s=5).generate([ask("patience")])
    assert outcome.ok and outcome.text == "reply to: patience"
    times = [r.received_at for r in server.requests]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.29  # waited as long as Retry-After asked
    assert times[2] - times[1] < 0.25  # the 500 had no Retry-After: a tiny backoff
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2


def test_retry_after_is_capped_by_backoff_max() -> None:
    with ChatServer() as server:
        server.enqueue(Reply(status=429, headers={"Retry-After": "30"}))
        started = time.monotonic()
        (outcome,) = backend(server, backoff_max_s=0.05).generate([ask("x")])
    assert outcome.ok
    assert time.monotonic() - started < 5


def test_gives_up_after_max_retries_with_a_retryable_error() -> None:
    with ChatServer(handler=lambda request: Reply(status=503)) as server:
        (outcome,) = backend(server, max_retries=3).generate([ask("x")])
    assert len(server.requests) == 4  # the first try and three retries
    assert not outcome.ok and outcome.retryable
    assert "gave up after 4 attempt" in outcome.error and "503" in outcome.error


def test_client_error_is_not_retried() -> None:
    with ChatServer() as server:
        server.enqueue(Reply(status=400, json={"error": {"message": "max_tokens is too large"}}))
        (outcome,) = backend(server).generate([ask("x")])
    assert len(server.requests) == 1
    assert not outcome.retryable
    assert "400" in outcome.error and "max_tokens is too large" in outcome.error


def test_a_timeout_is_retried_then_reported() -> None:
    with ChatServer(handler=lambda request: Reply(delay_s=0.6)) as server:
        (outcome,) = backend(server, timeout_s=0.1, max_retries=1).generate([ask("slow")])
        assert len(server.requests) == 2
    assert not outcome.ok and outcome.retryable
    assert "timed out" in outcome.error


def test_a_dropped_connection_is_retried() -> None:
    with ChatServer() as server:
        server.enqueue(Reply(disconnect=True))
        (outcome,) = backend(server).generate([ask("again")])
    assert outcome.ok and len(server.requests) == 2


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="this is not json"),
        Reply(json={"id": "x", "choices": []}),
        Reply(json={"choices": [{"finish_reason": "stop"}]}),
        Reply(json=["not", "an", "object"]),
    ],
)
def test_a_malformed_200_is_a_non_retryable_error(reply: Reply) -> None:
    with ChatServer() as server:
        server.enqueue(reply)
        (outcome,) = backend(server).generate([ask("x")])
    assert len(server.requests) == 1
    assert not outcome.ok and not outcome.retryable
    assert outcome.error.startswith("malformed response")


def test_requests_run_concurrently_and_come_back_in_order() -> None:
    count = 12

    def later_first(request: RecordedRequest) -> Reply:
        # Earlier requests answer later, so completion order is the reverse of request order.
        index = int(request.body["messages"][-1]["content"].removeprefix("q"))
        return Reply(delay_s=0.02 * (count - index))

    with ChatServer(delay_s=0.05, handler=later_first) as server:
        outcomes = backend(server, max_concurrency=4).generate([ask(f"q{i}") for i in range(count)])
    assert [o.text for o in outcomes] == [f"reply to: q{i}" for i in range(count)]
    assert 1 < server.max_in_flight <= 4
    assert len(server.requests) == count


def test_one_failing_request_does_not_fail_the_others() -> None:
    def reject_bad(request: RecordedRequest) -> Reply | None:
        if request.body["messages"][-1]["content"] == "bad":
            return Reply(status=422, json={"error": {"message": "unprocessable"}})
        return None

    with ChatServer(handler=reject_bad) as server:
        outcomes = backend(server).generate([ask("good"), ask("bad"), ask("fine")])
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "422" in outcomes[1].error


def test_generate_works_inside_a_running_event_loop() -> None:
    with ChatServer() as server:
        chat = backend(server)

        async def inside() -> list:
            return chat.generate([ask("loop")])

        (outcome,) = asyncio.run(inside())
    assert outcome.text == "reply to: loop"


def test_empty_batch_sends_nothing() -> None:
    with ChatServer() as server:
        assert backend(server).generate([]) == []
    assert server.requests == []


def test_refusal_field_becomes_the_text() -> None:
    outcome = parse_completion(
        {
            "id": "r",
            "choices": [
                {
                    "message": {"role": "assistant", "content": None, "refusal": "I can't."},
                    "finish_reason": "stop",
                }
            ],
        }
    )
    assert outcome.ok and outcome.text == "I can't." and outcome.raw["refusal"] == "I can't."
    assert outcome.prompt_tokens is None


def test_parse_retry_after() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None
    past = parse_retry_after(httpx.Headers({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}))
    assert past == 0.0


def test_backoff_grows_and_is_capped() -> None:
    chat = OpenAICompatibleBackend(
        base_url="http://127.0.0.1:9/v1", model="m", backoff_base_s=1.0, backoff_max_s=5.0
    )
    assert 0.5 <= chat.backoff_delay(0, None) <= 1.0
    assert 2.0 <= chat.backoff_delay(2, None) <= 4.0
    assert 2.5 <= chat.backoff_delay(10, None) <= 5.0
    assert chat.backoff_delay(0, 3.0) == 3.0
    assert chat.backoff_delay(0, 60.0) == 5.0


def test_settings_defaults_and_batch_size() -> None:
    validated = validate_backend_settings(
        "openai", {"base_url": "https://api.example.com/v1/", "model": "gpt-x"}
    )
    assert validated == {
        "base_url": "https://api.example.com/v1",
        "model": "gpt-x",
        "api_key_env": None,
        "timeout_s": 60.0,
        "max_concurrency": 8,
        "max_retries": 5,
        "backoff_base_s": 1.0,
        "backoff_max_s": 30.0,
    }
    chat = build_backend("openai", {**validated, "max_concurrency": 3})
    assert chat.preferred_batch_size == 12


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"model": "m"}, "base_url"),
        ({"base_url": "", "model": "m"}, "base_url"),
        ({"base_url": "ftp://host/v1", "model": "m"}, "base_url"),
        ({"base_url": "localhost:8000", "model": "m"}, "base_url"),
        ({"base_url": "http:///v1", "model": "m"}, "base_url"),
        ({"base_url": "http://h:99999/v1", "model": "m"}, "base_url"),
        ({"base_url": "http://h/v1"}, "model"),
        ({"base_url": "http://h/v1", "model": "m", "temperature": 1}, "temperature"),
        ({"base_url": "http://h/v1", "model": "m", "api_key": "sk-1"}, "api_key"),
        ({"base_url": "http://h/v1", "model": "m", "api_key_env": "sk-abc-123"}, "api_key_env"),
        ({"base_url": "http://h/v1", "model": "m", "max_concurrency": 0}, "max_concurrency"),
        ({"base_url": "http://h/v1", "model": "m", "max_concurrency": 257}, "max_concurrency"),
        ({"base_url": "http://h/v1", "model": "m", "max_concurrency": "8"}, "max_concurrency"),
        ({"base_url": "http://h/v1", "model": "m", "max_retries": 21}, "max_retries"),
        ({"base_url": "http://h/v1", "model": "m", "timeout_s": 0}, "timeout_s"),
        ({"base_url": "http://h/v1", "model": "m", "timeout_s": True}, "timeout_s"),
        ({"base_url": "http://h/v1", "model": "m", "backoff_base_s": -1}, "backoff_base_s"),
        (
            {"base_url": "http://h/v1", "model": "m", "backoff_base_s": 5, "backoff_max_s": 1},
            "backoff_max_s",
        ),
    ],
)
def test_invalid_settings_name_the_field(settings: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        validate_settings(settings)


def test_text_the_database_cannot_store_is_replaced_and_counted():
    from studies.generation.backends import ChatOutcome

    outcome = ChatOutcome(text="ok\x00 \udc80!", raw={"id": "x"})
    assert outcome.text == "ok\ufffd \ufffd!" and outcome.ok
    assert outcome.raw == {"id": "x", "replaced_characters": 2}
    clean = ChatOutcome(text="tab\tand newline\n stay")
    assert clean.text == "tab\tand newline\n stay" and "replaced_characters" not in clean.raw
