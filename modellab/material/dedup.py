"""Deduplication of generated texts: exact (normalised), near-duplicate text, embedding cosine.

Pure functions: the pipelines store the normalised text on each candidate and pass the texts
(and vectors, when an embedding model is registered) of what a job already has.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

EXACT, NEAR, EMBEDDING = "exact", "near", "embedding"
DEFAULT_NEAR_THRESHOLD = 0.9
DEFAULT_EMBEDDING_THRESHOLD = 0.92

_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Casefolded, Unicode-normalised (NFKC), punctuation and spacing collapsed: "How do I
    KILL a mosquito?!" and "how do i kill a mosquito" are the same text."""
    text = unicodedata.normalize("NFKC", text or "").casefold()
    return _NOT_WORD.sub(" ", text).strip()


def text_similarity(a: str, b: str) -> float:
    """Similarity of two normalised texts in [0, 1] (difflib's ratio over characters)."""
    if a == b:
        return 1.0
    if not a or not b:
        return 0.0
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def cosine_similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine of two vectors; 0.0 when either is all zeros."""
    if len(a) != len(b):
        raise ValueError(f"vectors of different lengths ({len(a)} and {len(b)})")
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


@dataclass(frozen=True)
class Duplicate:
    """Why a new text is a duplicate: ``of`` indexes ``[*existing, *new]``."""

    reason: str
    of: int
    similarity: float


def _near_enough(a: str, b: str, threshold: float) -> float | None:
    # difflib's cheap upper bounds first: most pairs are far apart.
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
        return None
    ratio = matcher.ratio()
    return ratio if ratio >= threshold else None


def find_duplicates(
    new: Sequence[str],
    *,
    existing: Sequence[str] = (),
    near_threshold: float = DEFAULT_NEAR_THRESHOLD,
    new_vectors: Sequence[Sequence[float]] | None = None,
    existing_vectors: Sequence[Sequence[float]] | None = None,
    embedding_threshold: float = DEFAULT_EMBEDDING_THRESHOLD,
) -> list[Duplicate | None]:
    """For each of ``new`` (normalised texts, in order), the text it repeats or None.

    A new text is compared with everything kept before it: ``existing`` (what the job already
    has, duplicates left out by the caller) and the earlier new texts that were not themselves
    duplicates. The first test that matches names the reason: the same normalised text, then
    text similarity ≥ ``near_threshold``, then (with vectors for both sides) cosine similarity
    ≥ ``embedding_threshold``; the most similar kept text is named.
    """
    for name, value in (("near_threshold", near_threshold), ("embedding", embedding_threshold)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1], not {value}")
    use_vectors = new_vectors is not None
    if use_vectors:
        if len(new_vectors) != len(new):
            raise ValueError(f"{len(new_vectors)} vectors for {len(new)} new texts")
        if existing and (existing_vectors is None or len(existing_vectors) != len(existing)):
            raise ValueError("give a vector for every existing text, or none at all")
    kept: list[int] = list(range(len(existing)))
    texts = [*existing, *new]
    vectors = [*(existing_vectors or []), *(new_vectors or [])] if use_vectors else []
    exact_index = {text: i for i, text in enumerate(existing)}
    results: list[Duplicate | None] = []
    for offset, text in enumerate(new):
        index = len(existing) + offset
        found: Duplicate | None = None
        if text in exact_index:
            found = Duplicate(EXACT, exact_index[text], 1.0)
        else:
            best = max(
                (
                    (ratio, other)
                    for other in kept
                    if (ratio := _near_enough(text, texts[other], near_threshold)) is not None
                ),
                default=None,
            )
            if best is not None:
                found = Duplicate(NEAR, best[1], round(best[0], 4))
            elif use_vectors and kept:
                score, other = max((cosine_similarity(vectors[index], vectors[o]), o) for o in kept)
                if score >= embedding_threshold:
                    found = Duplicate(EMBEDDING, other, round(score, 4))
        results.append(found)
        if found is None:
            kept.append(index)
            exact_index.setdefault(text, index)
    return results


def near_duplicate_rate(texts: Sequence[str], threshold: float = DEFAULT_NEAR_THRESHOLD) -> float:
    """Share of texts (normalised) that repeat or nearly repeat an earlier one: the quality
    report's figure for a final set (0.0 for fewer than two texts)."""
    if len(texts) < 2:
        return 0.0
    duplicates = find_duplicates(list(texts), near_threshold=threshold)
    return sum(d is not None for d in duplicates) / len(texts)
