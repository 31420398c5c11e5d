"""Reads of the participant side: where a participant is, and what an item page shows."""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Participant, Rating, Slot, SlotItem, Trial
from annotation.pseudonyms import pseudonym_for
from studies.models import Query, Scenario, Study


def participant_step(participant: Participant) -> str:
    """The page a participant belongs on: consent, instructions, item, done, ended or declined."""
    status = participant.status
    if status == Participant.Status.COMPLETED:
        return "done"
    if status in (Participant.Status.TIMED_OUT, Participant.Status.EXCLUDED):
        return "ended"
    if status == Participant.Status.RETURNED:
        return "declined"
    if participant.slot_id is None:
        return "consent"
    if participant.instructions_read_at is None:
        return "instructions"
    return "item"


def page_count(participant: Participant) -> int:
    return SlotItem.objects.filter(slot_id=participant.slot_id).count()


def has_free_slot(study: Study) -> bool:
    return Slot.objects.filter(study=study, status=Slot.Status.FREE).exists()


@dataclass(frozen=True)
class ItemPage:
    item: SlotItem
    trial: Trial | None
    scenario: str
    topics: list[Query]


def item_page(participant: Participant, trial: Trial | None, item: SlotItem) -> ItemPage:
    """What the item page needs: the trial's query and scenario, or the topics on offer."""
    topics: list[Query] = []
    scenario = ""
    if trial is None and item.kind == SlotItem.Kind.STIMULUS:
        used = queries_seen(participant)
        topics = list(
            Query.objects.filter(study_id=participant.study_id, category=item.category)
            .exclude(pk__in=used)
            .order_by("topic", "query_id")
        )
    if trial is not None and trial.query_id and item.motivation:
        scenario = (
            Scenario.objects.filter(query_id=trial.query_id, motivation=item.motivation)
            .values_list("text", flat=True)
            .first()
            or ""
        )
    return ItemPage(item=item, trial=trial, scenario=scenario, topics=topics)


def queries_seen(participant: Participant):
    """Subquery of the queries this participant was already shown (attention pages have none)."""
    # NULLs must stay out: "NOT IN (…, NULL)" is never true in SQL and would hide every topic.
    return Trial.objects.filter(participant=participant, query__isnull=False).values("query_id")


def participant_by_external_id(study: Study, external_id: str) -> Participant | None:
    pseudonym = pseudonym_for(salt=study.pseudonym_salt, external_id=external_id)
    return (
        Participant.objects.select_related("study").filter(study=study, pseudonym=pseudonym).first()
    )


LONG_FORMAT_BASE = [
    "participant_id",
    "participant_status",
    "query_id",
    "category",
    "topic",
    "motivation",
    "response_type",
    "question",
    "value",
]
LONG_FORMAT_TAIL = ["kind", "correct", "item_position", "shown_at", "answered_at", "ms_on_page"]


def long_format_columns(study: Study) -> list[str]:
    """The export's columns: the fixed ones, one per further factor, then stimulus/timing ones."""
    factors = [f["name"] for f in study.design.get("factors", [])]
    extra = [name for name in factors if name not in LONG_FORMAT_BASE]
    return LONG_FORMAT_BASE + extra + LONG_FORMAT_TAIL


def ratings_long_format(study: Study, statuses: tuple[str, ...] | None = None):
    """Every rating of the study, one dict per participant × item × question (a generator).

    ``participant_id`` is the first 16 hex digits of the keyed pseudonym: stable, and never
    the recruitment platform's id. Attention checks come as kind="attention" rows.
    """
    columns = long_format_columns(study)
    factor_columns = columns[len(LONG_FORMAT_BASE) : -len(LONG_FORMAT_TAIL)]
    ratings = (
        Rating.objects.filter(participant__study=study)
        .select_related("participant", "question", "trial__slot_item", "trial__query")
        .order_by("participant_id", "trial__position", "question__order")
    )
    if statuses is not None:
        ratings = ratings.filter(participant__status__in=statuses)
    for rating in ratings.iterator(chunk_size=5000):
        trial, participant, question = rating.trial, rating.participant, rating.question
        item = trial.slot_item
        query = trial.query
        row = {
            "participant_id": participant.pseudonym[:16],
            "participant_status": participant.status,
            "query_id": query.query_id if query else "",
            "category": query.category if query else "",
            "topic": query.topic if query else "",
            "motivation": item.motivation,
            "response_type": item.response_type,
            "question": question.key,
            "value": rating.value,
            "kind": item.kind,
            "correct": question.correct_value if question.is_attention_check else "",
            "item_position": trial.position,
            "shown_at": trial.shown_at.isoformat() if trial.shown_at else "",
            "answered_at": trial.answered_at.isoformat() if trial.answered_at else "",
            "ms_on_page": trial.ms_on_page if trial.ms_on_page is not None else "",
        }
        for name in factor_columns:
            row[name] = item.levels.get(name, "")
        yield {column: row[column] for column in columns}
