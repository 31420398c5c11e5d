"""Deduplication of generated texts: what counts as the same, nearly the same, or similar."""

from __future__ import annotations

import pytest

from modellab.material.dedup import (
    EMBEDDING,
    EXACT,
    NEAR,
    Duplicate,
    cosine_similarity,
    find_duplicates,
    near_duplicate_rate,
    normalise,
)


def test_normalise_ignores_case_punctuation_spacing_and_unicode_forms():
    assert normalise("  How do I KILL a mosquito?!  ") == "how do i kill a mosquito"
    assert normalise("ﬁnd\u00a0the  café") == normalise("find the CAFÉ")
    assert normalise("") == ""


def test_exact_duplicates_of_existing_and_of_earlier_new_texts():
    existing = [normalise("How do I kill a mosquito?")]
    new = [normalise(t) for t in ("how do i kill a mosquito", "Bake bread", "bake bread!!")]
    assert find_duplicates(new, existing=existing) == [
        Duplicate(EXACT, 0, 1.0),
        None,
        Duplicate(EXACT, 2, 1.0),  # index into [*existing, *new]: the earlier "bake bread"
    ]


def test_near_duplicates_name_the_most_similar_kept_text():
    texts = [
        normalise("How can I kill all the weeds in my garden without chemicals?"),
        normalise("How can I kill all the weeds in my garden without chemical sprays?"),
        normalise("What is the best way to shoot a portrait photo at dusk?"),
    ]
    found = find_duplicates(texts)
    assert found[0] is None and found[2] is None
    assert found[1].reason == NEAR and found[1].of == 0 and 0.9 <= found[1].similarity < 1


def test_the_threshold_decides_what_is_near():
    a, b = normalise("How do I kill a mosquito?"), normalise("How can I kill a mosquito?")
    assert find_duplicates([b], existing=[a], near_threshold=0.95) == [None]
    assert find_duplicates([b], existing=[a], near_threshold=0.8)[0].reason == NEAR


def test_a_duplicate_is_not_itself_a_reference_for_later_texts():
    # c is near b only; b is a duplicate of a and was left out, so c is compared with a alone.
    a = "the quick brown fox jumps over the lazy dog again and again"
    b = a[:-1] + "x"
    c = b[:-12] + "x" + b[-11:]  # 0.983 similar to b, 0.966 to a
    found = find_duplicates([a, b, c], near_threshold=0.97)
    assert found[0] is None and found[1].of == 0
    assert found[2] is None


def test_embedding_similarity_catches_paraphrases_text_similarity_misses():
    texts = [normalise("How do I terminate a stuck process?"), normalise("Ending a frozen program")]
    vectors = [[1.0, 0.0, 0.1], [0.99, 0.0, 0.12]]
    assert find_duplicates(texts) == [None, None]
    found = find_duplicates(texts, new_vectors=vectors, embedding_threshold=0.95)
    assert found[0] is None
    assert found[1].reason == EMBEDDING and found[1].of == 0 and found[1].similarity >= 0.95
    assert find_duplicates(texts, new_vectors=vectors, embedding_threshold=0.9999) == [None, None]


def test_vectors_must_cover_every_text():
    with pytest.raises(ValueError, match="2 vectors for 1 new texts"):
        find_duplicates(["a"], new_vectors=[[1.0], [0.0]])
    with pytest.raises(ValueError, match="every existing text"):
        find_duplicates(["a"], existing=["b"], new_vectors=[[1.0]])
    with pytest.raises(ValueError, match="near_threshold"):
        find_duplicates(["a"], near_threshold=0)


def test_cosine_similarity():
    assert cosine_similarity([1, 0], [1, 0]) == 1
    assert cosine_similarity([1, 0], [0, 1]) == 0
    assert cosine_similarity([0, 0], [1, 1]) == 0
    with pytest.raises(ValueError, match="different lengths"):
        cosine_similarity([1], [1, 2])


def test_near_duplicate_rate_of_a_set():
    texts = [normalise(t) for t in ("kill a mosquito", "Kill a mosquito!", "bake bread", "x y")]
    assert near_duplicate_rate(texts) == 0.25
    assert near_duplicate_rate(texts[:1]) == 0.0
