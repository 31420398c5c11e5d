"""Reads of the participant side: where a participant is, and what an item or block page shows."""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass

from django.db.models import Count, F, Q

from annotation.material import in_showing_order, slot_items, study_material
from annotation.models import BlockAnswer, Participant, Rating, Slot, SlotItem, Trial
from annotation.pseudonyms import pseudonym_for
from studies.domain import INCLUSION_RULES, LONG_FORMAT_BASE, LONG_FORMAT_TAIL
from studies.models import Query, Question, QuestionnaireBlock, Study


def participant_for_page(participant_pk: int, slug: str) -> Participant | None:
    """The participant a browser's cookie names, with its study, in one read."""
    return (
        Participant.objects.select_related("study")
        .filter(pk=participant_pk, study__slug=slug)
        .first()
    )


def participant_page(participant: Participant) -> tuple[str, QuestionnaireBlock | None]:
    """The page a participant belongs on, and for "block" which block (else None).

    The step is one of consent, instructions, block, item, done, ended, withdrawn or declined.
    """
    status = participant.status
    if status == Participant.Status.COMPLETED:
        return "done", None
    if status == Participant.Status.WITHDRAWN:
        return "withdrawn", None
    if status in (Participant.Status.TIMED_OUT, Participant.Status.SCREENED_OUT):
        return "ended", None
    # "returned" is how a declined consent was stored before the declined state existed.
    if status in (Participant.Status.DECLINED, Participant.Status.RETURNED):
        return "declined", None
    if participant.slot_id is None:
        return "consent", None
    if participant.instructions_read_at is None:
        return "instructions", None
    block = current_block(participant)
    return ("block", block) if block is not None else ("item", None)


def participant_step(participant: Participant) -> str:
    """The page a participant belongs on (see participant_page)."""
    return participant_page(participant)[0]


def study_blocks(study_id: int) -> list[QuestionnaireBlock]:
    """The study's questionnaire blocks in the order shown: "before" ones, then "after" ones."""
    return in_showing_order(QuestionnaireBlock.objects.filter(study_id=study_id))


def current_block(participant: Participant) -> QuestionnaireBlock | None:
    """The block the participant must answer now, or None when an item (or nothing) is due.

    "Before" blocks come right after the instructions; "after" blocks once the last item's
    answers are in (the participant's position then lies beyond the last item).
    """
    blocks = study_material(participant.study).blocks
    if not blocks:
        return None
    done = set(participant.completed_blocks or [])
    for block in blocks:
        if block.key in done:
            continue
        if block.placement == QuestionnaireBlock.Placement.BEFORE:
            return block
        if participant.position > item_count(participant):
            return block
        return None
    return None


def block_questions(block: QuestionnaireBlock, *, study: Study) -> list[Question]:
    """A block's questions in the order shown, from the study's kept material."""
    return list(study_material(study).block_questions.get(block.pk, ()))


def item_count(participant: Participant) -> int:
    """How many rated items (stimuli and attention checks) the participant's slot holds."""
    return len(slot_items(participant.slot_id)) if participant.slot_id else 0


def needs_topic(item: SlotItem) -> bool:
    """The participant picks this item's query from its category's topics first."""
    return item.kind == SlotItem.Kind.STIMULUS and item.query_id is None


@dataclass(frozen=True)
class Progress:
    """Where a page sits among every page the participant sees (blocks, topic choices, items)."""

    number: int
    total: int

    @property
    def is_last(self) -> bool:
        return self.number >= self.total


def _pages(participant: Participant) -> list[tuple[str, object]]:
    material = study_material(participant.study)
    pages: list[tuple[str, object]] = [("block", b.pk) for b in material.before_blocks]
    for item in slot_items(participant.slot_id) if participant.slot_id else ():
        if needs_topic(item):
            pages.append(("topic", item.position))
        pages.append(("item", item.position))
    pages += [("block", b.pk) for b in material.after_blocks]
    return pages


def progress(
    participant: Participant,
    *,
    position: int | None = None,
    block: QuestionnaireBlock | None = None,
    choosing_topic: bool = False,
) -> Progress:
    """Page number of an item's page (its topic choice or its rating) or of a block, out of
    every page the participant sees."""
    pages = _pages(participant)
    if block is not None:
        page = ("block", block.pk)
    else:
        page = ("topic" if choosing_topic else "item", position or participant.position)
    number = pages.index(page) + 1 if page in pages else 1
    return Progress(number=number, total=len(pages))


def page_count(participant: Participant) -> int:
    """Every page the participant sees: blocks, topic choices and rated items."""
    return len(_pages(participant))


def has_free_slot(study: Study) -> bool:
    return Slot.objects.filter(study=study, status=Slot.Status.FREE).exists()


def may_resume_elsewhere(participant: Participant, session_id: str) -> bool:
    """Whether a browser that is not this participant's own may continue as them.

    Once someone has started (consented), only a link with the same recruitment session id
    may take their session to another device: a participant id alone is too easy to know.
    Links that carried no session id resume by participant id alone.
    """
    started = participant.slot_id is not None or participant.status in (
        Participant.Status.COMPLETED,
        Participant.Status.TIMED_OUT,
        Participant.Status.SCREENED_OUT,
        Participant.Status.WITHDRAWN,
    )
    if not started:
        return True
    stored = (participant.recruitment or {}).get("session", "")
    if not stored:
        return True
    return hmac.compare_digest(stored.encode(), (session_id or "").encode())


@dataclass(frozen=True)
class ItemPage:
    item: SlotItem
    trial: Trial | None
    scenario: str
    topics: list[Query]


def item_page(participant: Participant, trial: Trial | None, item: SlotItem) -> ItemPage:
    """What the item page needs: the trial's query, response and scenario, or the topics on
    offer; texts come from the study's kept material, not from further reads."""
    material = study_material(participant.study)
    topics: list[Query] = []
    scenario = ""
    if trial is None and item.kind == SlotItem.Kind.STIMULUS:
        seen = set(queries_seen(participant).values_list("query_id", flat=True))
        topics = [q for q in material.topics.get(item.category, ()) if q.pk not in seen]
    if trial is not None and trial.query_id:
        if trial.query_id in material.queries:
            trial.query = material.queries[trial.query_id]
        if trial.variant_id in material.variants_by_pk:
            trial.variant = material.variants_by_pk[trial.variant_id]
        if item.motivation:
            scenario = material.scenarios.get((trial.query_id, item.motivation), "")
    return ItemPage(item=item, trial=trial, scenario=scenario, topics=topics)


def queries_seen(participant: Participant):
    """Subquery of the queries this participant was already shown (attention pages have none)."""
    # NULLs must stay out: "NOT IN (…, NULL)" is never true in SQL and would hide every topic.
    return Trial.objects.filter(participant=participant, query__isnull=False).values("query_id")


def has_answers(participant: Participant) -> bool:
    """Whether any answer of the participant is stored (ratings or questionnaire answers)."""
    return (
        Rating.objects.filter(participant=participant).exists()
        or BlockAnswer.objects.filter(participant=participant).exists()
    )


def participant_by_external_id(study: Study, external_id: str) -> Participant | None:
    pseudonym = pseudonym_for(salt=study.pseudonym_salt, external_id=external_id)
    participant = Participant.objects.filter(study=study, pseudonym=pseudonym).first()
    if participant is not None:
        participant.study = study
    return participant


def long_format_columns(study: Study) -> list[str]:
    """The export's columns: the fixed ones, one per further factor, then stimulus/timing ones."""
    factors = [f["name"] for f in study.design.get("factors", [])]
    extra = [name for name in factors if name not in LONG_FORMAT_BASE]
    return [*LONG_FORMAT_BASE, *extra, *LONG_FORMAT_TAIL]


def counted_participants(study: Study, inclusion: str = "all"):
    """The study's participants an inclusion rule (studies.domain.INCLUSION_RULES) counts;
    withdrawn participants never count."""
    participants = Participant.objects.filter(study=study).exclude(
        status=Participant.Status.WITHDRAWN
    )
    if inclusion == "all":
        return participants
    if inclusion not in INCLUSION_RULES:
        raise ValueError(f"inclusion must be one of {', '.join(INCLUSION_RULES)}")
    participants = participants.filter(status=Participant.Status.COMPLETED)
    if inclusion == "included":
        participants = participants.filter(excluded=False)
    return participants


def ratings_long_format(study: Study, inclusion: str = "all"):
    """Every rating of the study's counted participants (``counted_participants``), one dict
    per participant × item × question (a generator).

    ``participant_id`` is the first 16 hex digits of the keyed pseudonym: stable, and never
    the recruitment platform's id. Attention checks come as kind="attention" rows.
    """
    columns = long_format_columns(study)
    factor_columns = columns[len(LONG_FORMAT_BASE) : -len(LONG_FORMAT_TAIL)]
    ratings = (
        Rating.objects.filter(participant__in=counted_participants(study, inclusion))
        .select_related("participant", "question", "trial__slot_item", "trial__query")
        .order_by("participant_id", "trial__position", "question__order")
    )
    for rating in ratings.iterator(chunk_size=5000):
        trial, participant, question = rating.trial, rating.participant, rating.question
        item = trial.slot_item
        query = trial.query
        row = {
            "participant_id": participant.pseudonym[:16],
            "participant_status": participant.status,
            "excluded": participant.excluded,
            "is_pilot": participant.is_pilot,
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


# The block-answers export: one row per participant × question of each block they submitted.
BLOCK_ANSWER_COLUMNS: tuple[str, ...] = (
    "participant_id",
    "participant_status",
    "excluded",
    "is_pilot",
    "block",
    "question",
    "type",
    "value",
    "answered_at",
)


def block_answer_value(question: Question, answer: BlockAnswer | None) -> str:
    """An answer as one CSV cell: numbers as written (3, 2.5), choices as a JSON list."""
    if answer is None:
        return ""
    if question.kind in (Question.Kind.LIKERT, Question.Kind.NUMBER):
        number = answer.value_number
        if number is None:
            return ""
        return str(int(number)) if float(number).is_integer() else repr(float(number))
    if question.kind == Question.Kind.MULTIPLE_CHOICE:
        # JSON keeps labels that contain commas or semicolons unambiguous.
        return json.dumps(list(answer.value_choices or []), ensure_ascii=False)
    return answer.value_text


def block_answers_rows(study: Study, inclusion: str = "all") -> Iterator[dict[str, object]]:
    """Every submitted block's answers, one dict per participant × block question (a generator).

    Participants get rows only for the blocks they submitted; an optional question they left
    empty has a row with an empty value and answered_at. ``participant_id`` is the same
    pseudonymous id as in the ratings export.
    """
    blocks = study_blocks(study.pk)
    if not blocks:
        return
    questions = {
        block.pk: list(Question.objects.filter(block=block).order_by("order", "pk"))
        for block in blocks
    }
    participants = (
        counted_participants(study, inclusion)
        .exclude(completed_blocks=[])
        .prefetch_related("block_answers")
        .order_by("pk")
    )
    for participant in participants.iterator(chunk_size=500):
        answers = {a.question_id: a for a in participant.block_answers.all()}
        submitted = set(participant.completed_blocks or [])
        for block in blocks:
            if block.key not in submitted:
                continue
            for question in questions[block.pk]:
                answer = answers.get(question.pk)
                yield {
                    "participant_id": participant.pseudonym[:16],
                    "participant_status": participant.status,
                    "excluded": participant.excluded,
                    "is_pilot": participant.is_pilot,
                    "block": block.key,
                    "question": question.key,
                    "type": question.kind,
                    "value": block_answer_value(question, answer),
                    "answered_at": answer.answered_at.isoformat() if answer else "",
                }


# --- Recruitment ids for the recruitment platform's bulk tools (owners and superusers) ------

RECRUITMENT_LISTS = ("approve", "reject", "bonus")


def recruitment_list_participants(study: Study, name: str):
    """Who is on a list: approve and bonus, completed and not excluded; reject, excluded or
    screened-out participants. Withdrawn participants are on none (they return the study)."""
    if name in ("approve", "bonus"):
        return counted_participants(study, "included").order_by("pk")
    if name == "reject":
        return (
            Participant.objects.filter(study=study)
            .filter(Q(excluded=True) | Q(status=Participant.Status.SCREENED_OUT))
            .exclude(status=Participant.Status.WITHDRAWN)
            .order_by("pk")
        )
    raise ValueError(f"no recruitment list named {name!r}")


@dataclass(frozen=True)
class RecruitmentListCounts:
    """How many participants a list has, and how many of their ids it can name."""

    participants: int
    stored: int  # raw id stored, encrypted
    erased: int  # erased after the study's retention period
    not_stored: int  # anonymous links, or joined while no key was configured


def recruitment_list_counts(study: Study, name: str) -> RecruitmentListCounts:
    """A list's counts, read without decrypting any id."""
    counts = recruitment_list_participants(study, name).aggregate(
        participants=Count("pk"),
        stored=Count("pk", filter=~Q(recruitment_id_encrypted="")),
        erased=Count(
            "pk", filter=Q(recruitment_id_encrypted="", recruitment_id_erased_at__isnull=False)
        ),
    )
    return RecruitmentListCounts(
        participants=counts["participants"],
        stored=counts["stored"],
        erased=counts["erased"],
        not_stored=counts["participants"] - counts["stored"] - counts["erased"],
    )


@dataclass(frozen=True)
class RecruitmentListEntry:
    """One participant of a list: the raw id, or why there is none ("erased", "not stored",
    "unreadable": no configured key reads it)."""

    pseudonym: str
    recruitment_id: str
    missing: str = ""


def recruitment_list(study: Study, name: str) -> list[RecruitmentListEntry]:
    """A list's participants with their decrypted recruitment ids (callers audit the read)."""
    from annotation.recruitment_ids import RecruitmentKeyError, reveal_recruitment_id

    entries = []
    rows = recruitment_list_participants(study, name).values_list(
        "pseudonym", "recruitment_id_encrypted", "recruitment_id_erased_at"
    )
    for pseudonym, token, erased_at in rows.iterator(chunk_size=2000):
        if not token:
            missing = "erased" if erased_at is not None else "not stored"
            entries.append(RecruitmentListEntry(pseudonym[:16], "", missing))
            continue
        try:
            entries.append(RecruitmentListEntry(pseudonym[:16], reveal_recruitment_id(token)))
        except RecruitmentKeyError:
            entries.append(RecruitmentListEntry(pseudonym[:16], "", "unreadable"))
    return entries


# --- Quality screening: the plain records studies.datasets.quality judges --------------------


def _seconds_between(start, end) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def quality_records(study: Study, participant_pks: list[int]):
    """The records of the given participants (full: answers, attention checks, blanks), and
    the study's whole population (light: arrival order, times, device key, session id) that
    the speeders' median and the duplicate check compare against."""
    from studies.datasets.quality import ParticipantRecord

    chosen = set(participant_pks)
    population = []
    for pk, pseudonym, status, consented, completed, device_key, recruitment in (
        Participant.objects.filter(study=study)
        .exclude(status=Participant.Status.WITHDRAWN)
        .order_by("pk")
        .values_list(
            "pk",
            "pseudonym",
            "status",
            "consented_at",
            "completed_at",
            "device_key",
            "recruitment",
        )
        .iterator(chunk_size=2000)
    ):
        population.append(
            ParticipantRecord(
                key=pk,
                label=pseudonym[:10],
                order=pk,
                completed=status == Participant.Status.COMPLETED,
                total_seconds=_seconds_between(consented, completed),
                device_key=device_key,
                session_id=(recruitment or {}).get("session", ""),
            )
        )
    item_questions = list(
        Question.objects.filter(study=study, is_attention_check=False, block__isnull=True)
        .order_by("order", "pk")
        .values_list("pk", flat=True)
    )
    block_questions: dict[str, set[int]] = {}
    for key, question_pk in Question.objects.filter(study=study, block__isnull=False).values_list(
        "block__key", "pk"
    ):
        block_questions.setdefault(key, set()).add(question_pk)
    answers: dict[int, dict[int, dict[int, int]]] = {}  # participant → position → question
    attention: dict[int, list[tuple[int, bool]]] = {}
    for participant_pk, position, kind, question_pk, value, correct in (
        Rating.objects.filter(participant_id__in=chosen)
        .values_list(
            "participant_id",
            "trial__position",
            "trial__slot_item__kind",
            "question_id",
            "value",
            "question__correct_value",
        )
        .iterator(chunk_size=5000)
    ):
        if kind == SlotItem.Kind.ATTENTION:
            attention.setdefault(participant_pk, []).append((position, value == correct))
        else:
            answers.setdefault(participant_pk, {}).setdefault(position, {})[question_pk] = value
    answered_items: dict[int, list[int]] = {}
    for participant_pk, position in (
        Trial.objects.filter(
            participant_id__in=chosen,
            answered_at__isnull=False,
            slot_item__kind=SlotItem.Kind.STIMULUS,
        )
        .order_by("participant_id", "position")
        .values_list("participant_id", "position")
    ):
        answered_items.setdefault(participant_pk, []).append(position)
    block_answered: dict[int, set[int]] = {}
    for participant_pk, question_pk in BlockAnswer.objects.filter(
        participant_id__in=chosen
    ).values_list("participant_id", "question_id"):
        block_answered.setdefault(participant_pk, set()).add(question_pk)
    blocks_done = dict(
        Participant.objects.filter(pk__in=chosen).values_list("pk", "completed_blocks")
    )
    records = []
    for light in population:
        if light.key not in chosen:
            continue
        pages = answers.get(light.key, {})
        items = tuple(
            tuple(pages.get(position, {}).get(q) for q in item_questions)
            for position in answered_items.get(light.key, [])
        )
        blank = sum(1 for item in items for value in item if value is None)
        given = block_answered.get(light.key, set())
        for block_key in blocks_done.get(light.key) or []:
            blank += len(block_questions.get(block_key, set()) - given)
        checks = sorted(attention.get(light.key, []))
        records.append(
            ParticipantRecord(
                key=light.key,
                label=light.label,
                order=light.order,
                completed=light.completed,
                total_seconds=light.total_seconds,
                attention=tuple(passed for _position, passed in checks),
                items=items,
                blank=blank,
                device_key=light.device_key,
                session_id=light.session_id,
            )
        )
    return records, population


def attention_results(participant: Participant) -> tuple[int, int]:
    """How many attention checks the participant answered, and how many of them wrongly
    (one query; the early screen-out's count on a failed check's submit)."""
    counts = Rating.objects.filter(
        participant=participant, question__is_attention_check=True
    ).aggregate(
        answered=Count("id"),
        failed=Count("id", filter=~Q(value=F("question__correct_value"))),
    )
    return counts["answered"], counts["failed"]


# --- The researcher's participants table and the quality numbers of the dashboard ----------

# Filters of the participants table by flag: any rule, none, or one rule by name.
FLAG_FILTERS = ("flagged", "not_flagged", "excluded", "undecided")


def participants_table(study: Study, *, status: str = "", flag: str = ""):
    """The study's participants for the researchers' table, newest first, filtered by status
    and by flag ("flagged", "not_flagged", "excluded", "undecided" flagged ones, or a rule)."""
    rows = Participant.objects.filter(study=study).select_related("slot").order_by("-pk")
    if status:
        rows = rows.filter(status=status)
    return with_flag(rows, flag)


def with_flag(rows, flag: str):
    """Participants filtered by a flag filter (FLAG_FILTERS or a rule's name; "" keeps all)."""
    if flag == "flagged":
        rows = rows.exclude(flags=[])
    elif flag == "not_flagged":
        rows = rows.filter(flags=[])
    elif flag == "excluded":
        rows = rows.filter(excluded=True)
    elif flag == "undecided":
        rows = rows.exclude(flags=[]).filter(exclusion_decision=Participant.Exclusion.UNDECIDED)
    elif flag:
        rows = rows.filter(flags__contains=[{"rule": flag}])
    return rows


def quality_numbers(study: Study) -> dict:
    """Flagged, excluded and kept participants, and how many each rule flagged."""
    from studies.datasets.quality import RULE_LABELS, rule_counts

    rows = Participant.objects.filter(study=study).exclude(status=Participant.Status.WITHDRAWN)
    # Keys other than the fields' names: an aggregate may not shadow a field ("excluded").
    counts = rows.aggregate(
        n_screened=Count("pk", filter=Q(screened_at__isnull=False)),
        n_flagged=Count("pk", filter=~Q(flags=[])),
        n_excluded=Count("pk", filter=Q(excluded=True)),
        n_excluded_completed=Count(
            "pk", filter=Q(excluded=True, status=Participant.Status.COMPLETED)
        ),
        n_kept=Count("pk", filter=Q(exclusion_decision=Participant.Exclusion.KEPT)),
        n_confirmed=Count("pk", filter=Q(exclusion_decision=Participant.Exclusion.EXCLUDED)),
        n_undecided=Count(
            "pk",
            filter=~Q(flags=[]) & Q(exclusion_decision=Participant.Exclusion.UNDECIDED),
        ),
    )
    counts = {key.removeprefix("n_"): value for key, value in counts.items()}
    per_rule = rule_counts(rows.exclude(flags=[]).values_list("flags", flat=True))
    return {
        **counts,
        "rules": [
            {"rule": rule, "label": RULE_LABELS[rule], "count": n} for rule, n in per_rule.items()
        ],
    }
