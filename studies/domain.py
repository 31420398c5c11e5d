"""The fixed vocabulary of refusal-perception studies, defined once and imported everywhere.

Response types, safety categories, motivation levels, the long-format column names (and the
factor names they reserve) and the status groups. Pure Python (no Django): the analysis
package and the spec loader import it too. Status values are plain strings, which Django's
``TextChoices`` members compare equal to.
"""

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

# --- factors with a defined meaning ------------------------------------------------------

# The factor whose level selects which scenario text a participant reads.
MOTIVATION_FACTOR = "motivation"
# The factor whose level is the response type shown (an empty response rule then suffices).
RESPONSE_TYPE_FACTOR = "response_type"
# The levels of ``motivation``; the stimuli file has one scenario column for each.
MOTIVATION_LEVELS: tuple[str, ...] = ("benign", "malicious")


def scenario_column(motivation: str) -> str:
    """The stimuli file's column holding the scenario text for a motivation level."""
    return f"{motivation}_scenario"


SCENARIO_COLUMNS: tuple[str, ...] = tuple(scenario_column(m) for m in MOTIVATION_LEVELS)

# --- the long format (one row per participant × item × question) -------------------------

# Columns before the further factors' columns, in export order.
LONG_FORMAT_BASE: tuple[str, ...] = (
    "participant_id",
    "participant_status",
    "excluded",
    "is_pilot",
    "query_id",
    "category",
    "topic",
    MOTIVATION_FACTOR,
    RESPONSE_TYPE_FACTOR,
    "question",
    "value",
)
# Columns after the further factors' columns: the item's kind and its timing.
LONG_FORMAT_TAIL: tuple[str, ...] = (
    "kind",
    "correct",
    "item_position",
    "shown_at",
    "answered_at",
    "ms_on_page",
)
LONG_FORMAT_COLUMNS: tuple[str, ...] = LONG_FORMAT_BASE + LONG_FORMAT_TAIL
# What an analysis cannot do without (a frame read from elsewhere may lack the others).
LONG_FORMAT_REQUIRED: tuple[str, ...] = (
    "participant_id",
    "query_id",
    "category",
    MOTIVATION_FACTOR,
    RESPONSE_TYPE_FACTOR,
    "question",
    "value",
)

# What each fixed column holds (the codebook's wording, and the reason a name is reserved).
LONG_FORMAT_DESCRIPTIONS: dict[str, str] = {
    "participant_id": "pseudonymous participant id (first 16 hex digits of the keyed pseudonym)",
    "participant_status": "the participant's status (completed, returned, timed_out, ...)",
    "excluded": "True when the participant is excluded from analysis (quality flags or a "
    "researcher's decision); the status beside it is unchanged",
    "is_pilot": "True when the participant took part in the study's pilot launch",
    "query_id": "the query's id from the stimuli file",
    "category": "the query's safety category",
    "topic": "the query's topic",
    MOTIVATION_FACTOR: "the level of the motivation factor (which scenario was read)",
    RESPONSE_TYPE_FACTOR: "the response type shown",
    "question": "the question's key",
    "value": "the rating (scale point, from 1)",
    "kind": "stimulus or attention (an attention check's row)",
    "correct": "an attention check's correct point (empty for stimuli)",
    "item_position": "page number of the item in the participant's sequence (from 1)",
    "shown_at": "when the item was first shown (ISO 8601)",
    "answered_at": "when the item was answered (ISO 8601)",
    "ms_on_page": "milliseconds the participant spent on the item's page",
}

# Factor names that are long-format columns *because* they are factors: their column holds
# the factor's level, so a study may (and the seed design does) declare them.
FACTOR_COLUMNS: frozenset[str] = frozenset({MOTIVATION_FACTOR, RESPONSE_TYPE_FACTOR})
# Every other long-format column already means something; a factor of that name would
# overwrite it (or be overwritten) in the export and the analysis, so it is refused.
RESERVED_FACTOR_NAMES: frozenset[str] = frozenset(LONG_FORMAT_COLUMNS) - FACTOR_COLUMNS

# --- status groups -------------------------------------------------------------------------

# Study statuses (studies.models.Study.Status values).
STUDY_EDITABLE_STATUSES: tuple[str, ...] = ("draft", "generating", "review")
STUDY_LAUNCHED_STATUSES: tuple[str, ...] = ("live", "paused", "closed")
# New participants may join only while live.
STUDY_ARRIVAL_STATUSES: tuple[str, ...] = ("live",)
# People already in may go on while live, paused or closed (within their time limit).
STUDY_CONTINUE_STATUSES: tuple[str, ...] = ("live", "paused", "closed")

# Participant statuses (annotation.models.Participant.Status values).
PARTICIPANT_OPEN_STATUSES: tuple[str, ...] = ("active",)
PARTICIPANT_FINISHED_STATUSES: tuple[str, ...] = (
    "completed",
    "declined",
    "returned",
    "timed_out",
    "screened_out",
    "withdrawn",
)

# --- inclusion rules: which participants an analysis or an export counts -------------------

# Withdrawn participants are never counted, whatever the rule.
INCLUSION_RULES: dict[str, str] = {
    "included": "completed participants who are not excluded",
    "completed": "completed participants, excluded ones too",
    "all": "every participant who left a rating, whatever their status",
}
DEFAULT_INCLUSION = "included"
