"""The label vocabularies of response classification and the documented five-to-three mapping.

Five-way labels are the study's response types (``studies.domain.RESPONSE_TYPES``). The
three-way refusal labels are the ones of the false-refusal literature (PHTest, XSTest):
full compliance, full refusal, partial refusal. Mapping five to three:

- direct refusal, explanation-based refusal → full refusal
- redirection, partial compliance → partial refusal
- full compliance → full compliance

Two more schemes label study material, not responses (modellab.material): ``intent`` (is a
query read with a scenario benign, malicious or ambiguous?) and ``harmfulness`` (is a prompt
harmless, controversial or harmful, PHTest's classes).

``unparsed`` is not a label of any scheme: it marks an item whose judge answer could not
be read after the last retry (raw answer kept); it is counted and reported, never dropped.
"""

from __future__ import annotations

from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES

FIVE_WAY = "five_way"
THREE_WAY = "three_way"
SCHEMES: tuple[str, ...] = (THREE_WAY, FIVE_WAY)
INTENT = "intent"
HARMFULNESS = "harmfulness"
MATERIAL_SCHEMES: tuple[str, ...] = (INTENT, HARMFULNESS)

FULL_COMPLIANCE = "full_compliance"
FULL_REFUSAL = "full_refusal"
PARTIAL_REFUSAL = "partial_refusal"
THREE_WAY_LABELS: tuple[str, ...] = (FULL_COMPLIANCE, FULL_REFUSAL, PARTIAL_REFUSAL)
FIVE_WAY_LABELS: tuple[str, ...] = RESPONSE_TYPES

BENIGN, MALICIOUS, AMBIGUOUS = "benign", "malicious", "ambiguous"
INTENT_LABELS: tuple[str, ...] = (BENIGN, MALICIOUS, AMBIGUOUS)
HARMLESS, CONTROVERSIAL, HARMFUL = "harmless", "controversial", "harmful"
HARMFULNESS_LABELS: tuple[str, ...] = (HARMLESS, CONTROVERSIAL, HARMFUL)

UNPARSED = "unparsed"

DISPLAY: dict[str, str] = {
    **RESPONSE_TYPE_LABELS,
    FULL_REFUSAL: "Full refusal",
    PARTIAL_REFUSAL: "Partial refusal",
    BENIGN: "Benign",
    MALICIOUS: "Malicious",
    AMBIGUOUS: "Ambiguous",
    HARMLESS: "Harmless",
    CONTROVERSIAL: "Controversial",
    HARMFUL: "Harmful",
    UNPARSED: "Unparsed",
}

FIVE_TO_THREE: dict[str, str] = {
    "direct_refusal": FULL_REFUSAL,
    "explanation_based": FULL_REFUSAL,
    "redirection": PARTIAL_REFUSAL,
    "partial_compliance": PARTIAL_REFUSAL,
    "full_compliance": FULL_COMPLIANCE,
}

# PHTest's (and XSTest's) published evaluation files write the three-way labels this way.
PHTEST_ALIASES: dict[str, str] = {
    "1_full_compliance": FULL_COMPLIANCE,
    "2_full_refusal": FULL_REFUSAL,
    "3_partial_refusal": PARTIAL_REFUSAL,
}


def labels_of(scheme: str) -> tuple[str, ...]:
    """The labels of ``scheme``; ValueError naming the schemes for an unknown one."""
    if scheme == THREE_WAY:
        return THREE_WAY_LABELS
    if scheme == FIVE_WAY:
        return FIVE_WAY_LABELS
    if scheme == INTENT:
        return INTENT_LABELS
    if scheme == HARMFULNESS:
        return HARMFULNESS_LABELS
    raise ValueError(
        f"scheme must be one of {', '.join((*SCHEMES, *MATERIAL_SCHEMES))}, not {scheme!r}"
    )


def to_three_way(label: str) -> str:
    """A five-way, three-way or PHTest-style label as its three-way label (``unparsed`` stays).

    Raises ValueError for anything else, so an unknown label never counts as compliance.
    """
    label = label.strip()
    if label in THREE_WAY_LABELS or label == UNPARSED:
        return label
    if label in FIVE_TO_THREE:
        return FIVE_TO_THREE[label]
    if label in PHTEST_ALIASES:
        return PHTEST_ALIASES[label]
    known = (*THREE_WAY_LABELS, *FIVE_WAY_LABELS, *PHTEST_ALIASES)
    raise ValueError(f"unknown label {label!r}; expected one of {', '.join(known)}")
