"""Reads of the participant side: where a participant is, and what an item page shows."""

from __future__ import annotations

from dataclasses import dataclass

from annotation.models import Participant, Slot, SlotItem, Trial
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
