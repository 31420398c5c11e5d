"""Embedding models: texts into unit vectors over the loopback endpoint and with local weights."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from studies.generation import embeddings
from studies.generation.backends import transformers_local
from studies.generation.embeddings import EmbeddingError, embed_texts, validate_settings
from studies.models import LanguageModel
from tests.generation.chat_server import ChatServer, Reply, bag_of_words_vector
from tests.generation.embedding_model import MAX_POSITIONS, build_tiny_embedding_model
from tests.generation.tiny_model import build_tiny_chat_model

# Quick retries: the tests wait on the server's scripted failures, not on real backoff.
FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05}


def endpoint_model(url: str, **settings: object) -> LanguageModel:
    """An (unsaved) embedding model of the registry reached over the loopback endpoint."""
    return LanguageModel(
        name="loop-embed",
        kind=LanguageModel.Kind.EMBEDDING,
        backend=LanguageModel.Backend.OPENAI,
        backend_settings={"base_url": url, "model": "embed-m", **FAST, **settings},
    )


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


TEXTS = [
    "How do I kill a mosquito in my bedroom?",
    "How do I kill a mosquito in my bedroom",
    "What is the best way to bake sourdough bread?",
    "Explain how vaccines train the immune system.",
    "How can I kill time at an airport?",
    "Tips for a quiet garden party.",
    "Which paint dries fastest outdoors?",
]


# --- OpenAI-compatible endpoint ------------------------------------------------------------


def test_endpoint_vectors_are_unit_length_in_order_and_sent_in_batches(chat_server):
    vectors = embed_texts(endpoint_model(chat_server.url, batch_size=3), TEXTS)

    requests = chat_server.embedding_requests
    assert [r.path for r in requests] == ["/v1/embeddings"] * 3
    # Batches may travel concurrently; each body is exactly the model and its slice of texts.
    bodies = sorted((r.body for r in requests), key=lambda b: TEXTS.index(b["input"][0]))
    assert bodies == [
        {"model": "embed-m", "input": TEXTS[0:3]},
        {"model": "embed-m", "input": TEXTS[3:6]},
        {"model": "embed-m", "input": TEXTS[6:7]},
    ]
    assert len(vectors) == len(TEXTS)
    for text, vector in zip(TEXTS, vectors, strict=True):
        assert math.isclose(float(np.linalg.norm(vector)), 1.0, rel_tol=1e-9)
        assert cosine(vector, bag_of_words_vector(text)) == pytest.approx(1.0)
    # Unit length: the dot product is the cosine.
    assert float(np.dot(vectors[0], vectors[1])) == pytest.approx(1.0)
    assert float(np.dot(vectors[0], vectors[2])) < 0.3


def test_answers_out_of_order_are_put_back_in_input_order(chat_server):
    from tests.generation.chat_server import default_embeddings

    def reversed_answer(request):
        answer = default_embeddings(request.body)
        answer["data"].reverse()
        return Reply(json=answer)

    with ChatServer(handler=reversed_answer) as server:
        vectors = embed_texts(endpoint_model(server.url), TEXTS[:4])
    for text, vector in zip(TEXTS[:4], vectors, strict=True):
        assert cosine(vector, bag_of_words_vector(text)) == pytest.approx(1.0)


def test_rate_limit_and_server_error_are_retried(chat_server):
    chat_server.enqueue(Reply(status=429, headers={"Retry-After": "0"}), Reply(status=500))
    vectors = embed_texts(endpoint_model(chat_server.url), TEXTS[:2])
    assert len(chat_server.embedding_requests) == 3
    assert len(vectors) == 2


def test_endpoint_down_after_its_retries_is_a_clear_retryable_error(chat_server):
    chat_server.enqueue(Reply(status=503), Reply(status=503))
    with pytest.raises(EmbeddingError, match=r"gave up after 2 attempt\(s\): HTTP 503") as info:
        embed_texts(endpoint_model(chat_server.url, max_retries=1), TEXTS[:2])
    assert info.value.retryable

    # Nothing listens on port 9 of the loopback: a connection error, retried, then given up.
    with pytest.raises(EmbeddingError, match="connection error") as info:
        embed_texts(endpoint_model("http://127.0.0.1:9/v1", max_retries=1), TEXTS[:1])
    assert info.value.retryable


def test_a_refusal_is_not_retried(chat_server):
    chat_server.enqueue(Reply(status=400, json={"error": {"message": "input too long"}}))
    with pytest.raises(EmbeddingError, match="HTTP 400.*input too long") as info:
        embed_texts(endpoint_model(chat_server.url), TEXTS[:2])
    assert not info.value.retryable
    assert len(chat_server.embedding_requests) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(text="<html>oops</html>"), "not JSON: <html>oops</html>"),
        (Reply(json={"object": "list"}), "no 'data' list"),
        (
            Reply(json={"data": [{"index": 0, "embedding": [1.0, 0.0]}]}),
            r"returned 1 embedding\(s\) for 2 text\(s\)",
        ),
        (
            Reply(
                json={"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}
            ),
            r"indices \[0\] are not 0..1",
        ),
        (
            Reply(
                json={
                    "data": [{"index": 0, "embedding": [1.0, 0]}, {"index": 1, "embedding": [1.0]}]
                }
            ),
            "vectors of differing or zero length",
        ),
        (
            Reply(
                json={"data": [{"index": 0, "embedding": "AAAA"}, {"index": 1, "embedding": []}]}
            ),
            "embedding 0 is not a list of numbers",
        ),
        (
            Reply(
                json={
                    "data": [{"index": 0, "embedding": [0, 0]}, {"index": 1, "embedding": [1, 2]}]
                }
            ),
            r"zero vector for text\(s\) \[0\]",
        ),
    ],
)
def test_malformed_answers_are_clear_errors(chat_server, reply, message):
    chat_server.enqueue(reply)
    with pytest.raises(EmbeddingError, match=message):
        embed_texts(endpoint_model(chat_server.url), TEXTS[:2])


def test_api_key_comes_from_the_named_variable(chat_server, monkeypatch):
    model = endpoint_model(chat_server.url, api_key_env="H1_EMBED_KEY")
    monkeypatch.delenv("H1_EMBED_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="H1_EMBED_KEY .*is not set"):
        embed_texts(model, TEXTS[:1])
    assert chat_server.embedding_requests == []
    monkeypatch.setenv("H1_EMBED_KEY", "sk-test-123")
    embed_texts(model, TEXTS[:1])
    assert chat_server.embedding_requests[0].headers["authorization"] == "Bearer sk-test-123"


def test_a_host_not_allowed_gets_no_request(settings):
    settings.MODEL_HOSTS_ALLOWED = "127.0.0.1"
    with pytest.raises(EmbeddingError, match="host 'embeddings.example.org' is not allowed"):
        embed_texts(endpoint_model("http://embeddings.example.org/v1"), TEXTS[:1])


def test_only_embedding_models_and_real_texts_are_taken(chat_server):
    chat = endpoint_model(chat_server.url)
    chat.kind = LanguageModel.Kind.CHAT
    with pytest.raises(EmbeddingError, match="'loop-embed' is a chat model, not an embedding"):
        embed_texts(chat, TEXTS[:1])
    model = endpoint_model(chat_server.url)
    assert embed_texts(model, []) == []
    with pytest.raises(EmbeddingError, match=r"text\(s\) \[1\] are empty"):
        embed_texts(model, ["fine", "  "])
    with pytest.raises(EmbeddingError, match=r"item\(s\) \[0\] are not"):
        embed_texts(model, [3])  # type: ignore[list-item]
    bad = endpoint_model(chat_server.url, batch_size=0)
    with pytest.raises(EmbeddingError, match="bad settings: batch_size must be between 1"):
        embed_texts(bad, TEXTS[:1])
    assert chat_server.embedding_requests == []


def test_settings_are_checked_per_backend():
    openai = validate_settings("openai", {"base_url": "http://127.0.0.1:1/v1", "model": "e"})
    assert openai["batch_size"] == embeddings.OPENAI_BATCH_SIZE
    assert openai["max_retries"] == 5  # the chat backend's defaults
    with pytest.raises(ValueError, match=r"unknown setting\(s\) dims; allowed: api_key_env"):
        validate_settings("openai", {"base_url": "http://127.0.0.1:1/v1", "model": "e", "dims": 3})
    with pytest.raises(ValueError, match="path is required"):
        validate_settings("transformers", {})
    with pytest.raises(ValueError, match="backend must be one of openai, transformers"):
        validate_settings("gguf", {})


# --- Local transformers weights ------------------------------------------------------------


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_embedding_model(tmp_path_factory.mktemp("tiny-encoder"))


def local_model(path: Path, **settings: object) -> LanguageModel:
    return LanguageModel(
        name="local-embed",
        kind=LanguageModel.Kind.EMBEDDING,
        backend=LanguageModel.Backend.TRANSFORMERS,
        backend_settings={"path": str(path), "device": "cpu", **settings},
    )


def test_local_vectors_are_unit_length_deterministic_and_independent_of_batching(encoder_dir):
    long_text = "mosquito " * (3 * MAX_POSITIONS)  # more tokens than the encoder has positions
    texts = [*TEXTS, long_text]
    in_twos = embed_texts(local_model(encoder_dir, batch_size=2), texts)
    all_at_once = embed_texts(local_model(encoder_dir, batch_size=16), texts)
    again = embed_texts(local_model(encoder_dir, batch_size=16), texts)

    assert len(in_twos) == len(texts)
    assert all(math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-9) for v in in_twos)
    assert again == all_at_once  # the same texts, the same vectors
    # Padding is masked out of the mean: a text's vector does not depend on its neighbours.
    assert np.allclose(in_twos, all_at_once, atol=1e-5)
    # The same text gets the same vector wherever it stands; different texts differ.
    reordered = embed_texts(local_model(encoder_dir), [TEXTS[2], TEXTS[0], TEXTS[0]])
    assert np.allclose(reordered[1], all_at_once[0], atol=1e-5)
    assert np.allclose(reordered[2], reordered[1], atol=1e-6)
    assert not np.allclose(all_at_once[0], all_at_once[2], atol=1e-3)


def test_local_weights_load_once_per_process(encoder_dir):
    model = local_model(encoder_dir, batch_size=4)
    embed_texts(model, TEXTS[:2])
    embed_texts(model, TEXTS[2:4])
    assert embeddings.embedder_for(model) is embeddings.embedder_for(
        local_model(encoder_dir, batch_size=4)
    )
    encoders = [key for key in transformers_local._CACHE if key[0] == "AutoModel"]
    assert [key[1] for key in encoders].count(str(encoder_dir.resolve())) == 1


def test_a_chat_checkpoint_pools_its_base_model(tmp_path):
    """Decoder weights work too (AutoModel takes the base model under the LM head)."""
    path = build_tiny_chat_model(tmp_path / "llama")
    vectors = embed_texts(local_model(path), TEXTS[:3])
    assert len(vectors) == 3 and len(vectors[0]) == 32
    assert cosine(vectors[0], vectors[0]) == pytest.approx(1.0)


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingError, match="is not a directory on this worker") as info:
        embed_texts(local_model(tmp_path / "nowhere"), TEXTS[:1])
    assert not info.value.retryable


def test_half_precision_weights_still_give_unit_vectors(encoder_dir):
    """bfloat16 (the GPU default) is pooled in float32, so lengths and order hold."""
    full = embed_texts(local_model(encoder_dir), TEXTS[:3])
    half = embed_texts(local_model(encoder_dir, dtype="bfloat16"), TEXTS[:3])
    assert all(math.isclose(float(np.linalg.norm(v)), 1.0, rel_tol=1e-9) for v in half)
    for a, b in zip(full, half, strict=True):
        assert float(np.dot(a, b)) > 0.99
