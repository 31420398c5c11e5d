"""Drive participants through the real participant services, as tests/analysis/simulate.py does."""

from __future__ import annotations

import uuid

from annotation import services
from annotation.models import Participant, SlotItem, Trial
from studies.models import Study


def consent(study: Study, pid: str) -> Participant:
    """A participant who joined and agreed: in progress, on the instructions page."""
    participant = services.join_study(study=study, external_id=pid, recruitment={})
    services.give_consent(participant=participant)
    participant.refresh_from_db()
    return participant


def answer_pages(participant: Participant, pages: int | None = None, attention_ok: bool = True):
    """Answer ``pages`` pages (all when None); attention checks right unless ``attention_ok``."""
    study = participant.study
    participant = services.mark_instructions_read(participant=participant)
    questions = list(study.questions.filter(is_attention_check=False, block__isnull=True))
    answered = 0
    while participant.status == Participant.Status.ACTIVE and (pages is None or answered < pages):
        position = participant.position
        item = SlotItem.objects.select_related("attention_check").get(
            slot_id=participant.slot_id, position=position
        )
        trial = services.show_item(participant=participant, position=position)
        if trial is None:
            seen = Trial.objects.filter(participant=participant, query__isnull=False)
            query = (
                study.queries.filter(category=item.category)
                .exclude(pk__in=seen.values("query"))
                .order_by("topic")
                .first()
            )
            services.choose_topic(participant=participant, position=position, query_pk=query.pk)
        if item.kind == SlotItem.Kind.ATTENTION:
            check = item.attention_check
            value = check.correct_value if attention_ok else check.correct_value % check.points + 1
            answers = {check.key: str(value)}
        else:
            answers = {q.key: "4" for q in questions}
        participant = services.record_answers(
            participant=participant,
            position=position,
            raw_answers=answers,
            submission_id=uuid.uuid4(),
        ).participant
        answered += 1
    return participant


def complete(study: Study, pid: str, attention_ok: bool = True) -> Participant:
    return answer_pages(consent(study, pid), attention_ok=attention_ok)
