"""The fixed vocabulary of refusal-perception studies: response types and safety categories."""

RESPONSE_TYPES: tuple[str, ...] = (
    "direct_refusal",
    "explanation_based",
    "redirection",
    "partial_compliance",
    "full_compliance",
)

RESPONSE_TYPE_LABELS: dict[str, str] = {
    "direct_refusal": "Direct refusal",
    "explanation_based": "Explanation-based refusal",
    "redirection": "Redirection",
    "partial_compliance": "Partial compliance",
    "full_compliance": "Full compliance",
}

SAFETY_CATEGORIES: tuple[str, ...] = (
    "offensive_language",
    "dangerous_topics",
    "privacy_violation",
    "false_information",
)

# The factor whose level selects which scenario text a participant reads.
MOTIVATION_FACTOR = "motivation"
