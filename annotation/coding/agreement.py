"""Agreement statistics of human coding (Cohen's κ, Fleiss' κ, Krippendorff's α, confusion).

Pure Python, no Django: the selectors feed these plain data. ``codes`` everywhere is a mapping
item → {coder → label}; a coder who did not code an item is simply absent from its mapping.
A statistic that is undefined for the data (expected agreement of 1: every code one category)
is ``None``, never a made-up number.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

Codes = Mapping[Hashable, Mapping[Hashable, str]]


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's κ of two raters from their (label_a, label_b) pairs on the same items.

    κ = (p_o − p_e) / (1 − p_e), p_e from each rater's own marginal shares; None when there
    are no pairs or p_e is 1 (both raters used one and the same category throughout).
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    first = Counter(a for a, _ in pairs)
    second = Counter(b for _, b in pairs)
    expected = sum(first[c] * second[c] for c in first) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def accuracy(pairs: Sequence[tuple[str, str]]) -> float | None:
    """The share of pairs whose two labels are equal; None for no pairs."""
    return sum(a == b for a, b in pairs) / len(pairs) if pairs else None


def fleiss_kappa(units: Iterable[Sequence[str]]) -> float | None:
    """Fleiss' κ over units that each carry the same number (≥ 2) of codes.

    ValueError when the units' code counts differ (the caller keeps only the items with
    exactly k codes); None for no units, or when every code is one category.
    """
    units = [list(u) for u in units]
    if not units:
        return None
    raters = len(units[0])
    if raters < 2 or any(len(u) != raters for u in units):
        raise ValueError("Fleiss' κ needs the same number (at least 2) of codes on every item")
    n_units = len(units)
    totals: Counter[str] = Counter()
    agreement = 0.0
    for unit in units:
        counts = Counter(unit)
        totals.update(counts)
        agreement += (sum(c * c for c in counts.values()) - raters) / (raters * (raters - 1))
    observed = agreement / n_units
    expected = sum((t / (n_units * raters)) ** 2 for t in totals.values())
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def coincidence_matrix(units: Iterable[Sequence[str]], labels: Sequence[str]) -> list[list[float]]:
    """Krippendorff's coincidence matrix (nominal): for each unit with m ≥ 2 codes, each
    ordered pair of distinct codes adds 1/(m − 1) to its cell; rows and columns in ``labels``."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0.0] * len(labels) for _ in labels]
    for unit in units:
        m = len(unit)
        if m < 2:
            continue
        for i, a in enumerate(unit):
            for j, b in enumerate(unit):
                if i != j:
                    matrix[index[a]][index[b]] += 1.0 / (m - 1)
    return matrix


def krippendorff_alpha_nominal(units: Iterable[Sequence[str]]) -> float | None:
    """Krippendorff's α for nominal data; missing codes are simply absent from a unit.

    α = 1 − (n − 1) · Σ_{c≠k} o_ck / Σ_{c≠k} n_c·n_k over the pairable units (≥ 2 codes);
    None when fewer than two codes are pairable or only one category occurs.
    """
    units = [list(u) for u in units if len(u) >= 2]
    labels = sorted({label for unit in units for label in unit})
    matrix = coincidence_matrix(units, labels)
    marginals = [sum(row) for row in matrix]
    n = sum(marginals)
    if n < 2:
        return None
    size = len(labels)
    disagreement = sum(matrix[c][k] for c in range(size) for k in range(size) if c != k)
    expected = sum(marginals[c] * marginals[k] for c in range(size) for k in range(size) if c != k)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * disagreement / expected


def majority_label(labels: Iterable[str]) -> str | None:
    """The label more coders chose than any other; None on a tie for the top (no majority)."""
    ranked = Counter(labels).most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None
    return ranked[0][0]


@dataclass(frozen=True)
class VerificationOutcome:
    """The coders' verdict on one item of a verification task.

    ``labels``: the answered codes, in the order they were given; ``majority``: the label
    chosen more often than any other, None on a tie for the top or with no codes yet;
    ``tie``: two or more labels share the top count (the researcher decides); ``complete``:
    the item has all k codes. ``majority`` and ``tie`` are of the codes so far: final only
    when ``complete``.
    """

    labels: tuple[str, ...]
    majority: str | None
    tie: bool
    complete: bool


def verification_outcome(labels: Iterable[str], *, overlap: int) -> VerificationOutcome:
    """The outcome of an item whose ``overlap`` (k) coders gave ``labels`` so far."""
    labels = tuple(labels)
    majority = majority_label(labels)
    return VerificationOutcome(
        labels=labels,
        majority=majority,
        tie=bool(labels) and majority is None,
        complete=len(labels) >= overlap,
    )


def confusion_matrix(pairs: Iterable[tuple[str, str]], labels: Sequence[str]) -> list[list[int]]:
    """Counts of (row label, column label) pairs; rows and columns in ``labels`` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for a, b in pairs:
        matrix[index[a]][index[b]] += 1
    return matrix


def pooled_coder_matrix(codes: Codes, labels: Sequence[str]) -> list[list[int]]:
    """Coder vs coder, pooled: every unordered pair of coders on the same item adds one to
    (a, b) and one to (b, a), so the matrix is symmetric and its total is twice the pairs."""
    pairs = []
    for by_coder in codes.values():
        for a, b in combinations(list(by_coder.values()), 2):
            pairs.extend([(a, b), (b, a)])
    return confusion_matrix(pairs, labels)


@dataclass(frozen=True)
class PairAgreement:
    coder_a: Hashable
    coder_b: Hashable
    items: int
    agreement: float | None
    kappa: float | None


def pairwise_cohen(codes: Codes) -> list[PairAgreement]:
    """Cohen's κ and raw agreement for every pair of coders, on the items both coded."""
    coders = sorted({c for by_coder in codes.values() for c in by_coder}, key=str)
    result = []
    for a, b in combinations(coders, 2):
        pairs = [(v[a], v[b]) for v in codes.values() if a in v and b in v]
        result.append(PairAgreement(a, b, len(pairs), accuracy(pairs), cohen_kappa(pairs)))
    return result


@dataclass(frozen=True)
class CoderAgreement:
    """Agreement between coders of one task."""

    coded_items: int  # items with at least one code
    pairable_items: int  # items with at least two codes (Krippendorff's α uses these)
    complete_items: int  # items with exactly k codes (Fleiss' κ uses these)
    fleiss_kappa: float | None
    krippendorff_alpha: float | None
    pairs: list[PairAgreement]
    labels: tuple[str, ...]
    pooled_matrix: list[list[int]]


def coder_agreement(codes: Codes, *, k: int, labels: Sequence[str]) -> CoderAgreement:
    """Every coder-vs-coder statistic of a task whose items should each get ``k`` codes."""
    units = [list(v.values()) for v in codes.values() if v]
    complete = [u for u in units if len(u) == k]
    return CoderAgreement(
        coded_items=len(units),
        pairable_items=sum(len(u) >= 2 for u in units),
        complete_items=len(complete),
        fleiss_kappa=fleiss_kappa(complete) if k >= 2 else None,
        krippendorff_alpha=krippendorff_alpha_nominal(units),
        pairs=pairwise_cohen(codes),
        labels=tuple(labels),
        pooled_matrix=pooled_coder_matrix(codes, labels),
    )


@dataclass(frozen=True)
class ClassifierAgreement:
    """One automatic classifier against the coders' majority label.

    ``compared``: items with a majority and a usable classifier label; ``ties``: coded items
    without a majority (left out); ``unlabelled``: coded items the classifier has no label
    for; ``unparsed``: items the classifier could not label, or labelled outside the compared
    vocabulary (left out, counted).
    Rows of ``matrix`` are the coders' majority, columns the classifier, both in ``labels``.
    """

    name: str
    compared: int
    ties: int
    unlabelled: int
    unparsed: int
    accuracy: float | None
    kappa: float | None
    labels: tuple[str, ...]
    matrix: list[list[int]] = field(default_factory=list)


UNPARSED = "unparsed"


def classifier_agreement(
    name: str,
    codes: Codes,
    predictions: Mapping[Hashable, str],
    *,
    labels: Sequence[str],
    code_map: Mapping[str, str] | None = None,
    prediction_map: Mapping[str, str] | None = None,
) -> ClassifierAgreement:
    """Compare ``predictions`` (item → label) with the coders' majority on each item.

    ``code_map`` maps each human code before the majority is taken (five-way codes against a
    three-way classifier: FIVE_TO_THREE, so "direct refusal + explanation-based" is a
    full-refusal majority); ``prediction_map`` maps the classifier's labels (a five-way
    classifier on a three-way task). ``labels`` is the compared vocabulary.
    """
    code_map = code_map or {}
    prediction_map = prediction_map or {}
    pairs, ties, unlabelled, unparsed = [], 0, 0, 0
    for item, by_coder in codes.items():
        if not by_coder:
            continue
        majority = majority_label(code_map.get(c, c) for c in by_coder.values())
        if majority is None:
            ties += 1
            continue
        predicted = predictions.get(item)
        if predicted is None:
            unlabelled += 1
            continue
        if predicted == UNPARSED:
            unparsed += 1
            continue
        predicted = prediction_map.get(predicted, predicted)
        if predicted not in labels:
            # Outside the compared vocabulary: as unusable as an unreadable answer, and never
            # silently counted as some category.
            unparsed += 1
            continue
        pairs.append((majority, predicted))
    return ClassifierAgreement(
        name=name,
        compared=len(pairs),
        ties=ties,
        unlabelled=unlabelled,
        unparsed=unparsed,
        accuracy=accuracy(pairs),
        kappa=cohen_kappa(pairs),
        labels=tuple(labels),
        matrix=confusion_matrix(pairs, labels),
    )
