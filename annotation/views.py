"""Participant pages: entry, consent, instructions, questionnaire blocks, items, completion.

Every page works without JavaScript; each POST redirects (post/redirect/get) so refresh,
back and double submit land on the participant's current page.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from annotation import selectors, services
from annotation.answers import DEFAULT_MAX_LENGTH
from annotation.errors import AnswersInvalid, ParticipationEnded, StudyFull, TopicInvalid
from annotation.models import Participant, SlotItem
from studies.domain import STUDY_ARRIVAL_STATUSES
from studies.models import Question, Study

# New participants may join only a live study (the status groups live in studies.domain).
OPEN_STATUSES = STUDY_ARRIVAL_STATUSES


def _session_key(study: Study) -> str:
    return f"participant:{study.pk}"


def _participant(request: HttpRequest, study: Study) -> Participant | None:
    pk = request.session.get(_session_key(study))
    if pk is None:
        return None
    participant = Participant.objects.select_related("study").filter(pk=pk, study=study).first()
    if participant is not None and services.is_overdue(participant):
        participant = services.time_out_participant(participant=participant)
    return participant


def _page_for(study: Study, participant: Participant) -> HttpResponse:
    step, block = selectors.participant_page(participant)
    if step == "item":
        return redirect("annotation:item", slug=study.slug, position=participant.position)
    if step == "block":
        return redirect("annotation:block", slug=study.slug, key=block.key)
    return redirect(f"annotation:{step}", slug=study.slug)


def _closed(request: HttpRequest, study: Study) -> HttpResponse:
    return render(request, "annotation/closed.html", {"study": study}, status=403)


def _study(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


@never_cache
@require_http_methods(["GET", "HEAD"])
def entry(request: HttpRequest, slug: str) -> HttpResponse:
    """The recruitment link: find or create this person's participant, then resume."""
    study = _study(slug)
    params = study.recruitment_params
    external_id = request.GET.get(params.get("participant", "PROLIFIC_PID"), "").strip()[:200]
    participant = _participant(request, study)
    if external_id:
        # The recruitment id names the person; it wins over whatever this browser held.
        participant = selectors.participant_by_external_id(study, external_id)
    if participant is None:
        if study.status not in OPEN_STATUSES:
            return _closed(request, study)
        if not selectors.has_free_slot(study):
            return render(request, "annotation/full.html", {"study": study})
        recruitment = {
            key: request.GET.get(name, "")[:200]
            for key, name in params.items()
            if key != "participant" and request.GET.get(name)
        }
        participant = services.join_study(
            study=study, external_id=external_id or None, recruitment=recruitment
        )
    request.session[_session_key(study)] = participant.pk
    return _page_for(study, participant)


def _require_participant(view):
    def wrapped(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        study = _study(slug)
        participant = _participant(request, study)
        if participant is None:
            return render(request, "annotation/no_session.html", {"study": study}, status=403)
        return view(request, study, participant, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return never_cache(wrapped)


@_require_participant
@require_http_methods(["GET", "HEAD"])
def resume(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    return _page_for(study, participant)


@_require_participant
@require_http_methods(["GET", "HEAD", "POST"])
def consent(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    step = selectors.participant_step(participant)
    if step not in ("consent", "declined"):
        return _page_for(study, participant)
    if request.method == "POST":
        if request.POST.get("decision") == "decline":
            services.decline_consent(participant=participant)
            return redirect("annotation:declined", slug=study.slug)
        if request.POST.get("decision") == "agree":
            if study.status not in OPEN_STATUSES:
                return _closed(request, study)
            try:
                services.give_consent(participant=participant)
            except StudyFull:
                return render(request, "annotation/full.html", {"study": study})
            except ParticipationEnded:
                pass
            participant.refresh_from_db()
            return _page_for(study, participant)
    return render(request, "annotation/consent.html", {"study": study})


@_require_participant
@require_http_methods(["GET", "HEAD"])
def declined(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "declined":
        return _page_for(study, participant)
    return render(request, "annotation/declined.html", {"study": study})


@_require_participant
@require_http_methods(["GET", "HEAD", "POST"])
def instructions(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "instructions":
        return _page_for(study, participant)
    if request.method == "POST":
        services.mark_instructions_read(participant=participant)
        return _page_for(study, participant)
    return render(
        request,
        "annotation/instructions.html",
        {"study": study, "pages": selectors.page_count(participant)},
    )


def _client_ms(raw: str | None) -> int | None:
    try:
        value = int(raw or "")
    except ValueError:
        return None
    return value if 0 <= value < 24 * 3600 * 1000 else None


def _submission_id(raw: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(raw or "")
    except ValueError:
        # Without a usable id the participant's progress position still prevents doubles.
        return uuid.uuid4()


@_require_participant
@require_http_methods(["GET", "HEAD", "POST"])
def item(request: HttpRequest, study: Study, participant: Participant, position: int):
    """One item: pick a topic (if the study asks), then read and rate the response."""
    if selectors.participant_step(participant) != "item" or position != participant.position:
        return _page_for(study, participant)
    slot_item = SlotItem.objects.select_related("query", "attention_check", "slot").get(
        slot_id=participant.slot_id, position=position
    )
    errors: dict[str, str] = {}
    submitted: dict[str, str] = {}
    if request.method == "POST" and "topic" in request.POST:
        try:
            services.choose_topic(
                participant=participant, position=position, query_pk=int(request.POST["topic"])
            )
        except (TopicInvalid, ValueError):
            errors["topic"] = _("Please choose one of the topics listed.")
        else:
            return redirect("annotation:item", slug=study.slug, position=position)
    elif request.method == "POST":
        questions = services.item_questions(slot_item)
        raw = {q.key: request.POST.get(q.key, "") for q in questions}
        try:
            services.record_answers(
                participant=participant,
                position=position,
                raw_answers=raw,
                submission_id=_submission_id(request.POST.get("submission_id")),
                client_ms=_client_ms(request.POST.get("client_ms")),
            )
        except AnswersInvalid as exc:
            errors, submitted = exc.errors, raw
        else:
            participant.refresh_from_db()
            return _page_for(study, participant)

    trial = services.show_item(participant=participant, position=position)
    page = selectors.item_page(participant, trial, slot_item)
    questions = services.item_questions(slot_item) if trial is not None else []
    progress = selectors.progress(participant, position=position)
    context = {
        "study": study,
        "page": page,
        "position": position,
        "page_number": progress.number,
        "pages": progress.total,
        "is_last": progress.is_last,
        "questions": [
            {
                "question": q,
                "choices": [(p, q.anchor_for(p)) for p in range(1, q.points + 1)],
                "error": errors.get(q.key, ""),
                "value": submitted.get(q.key, ""),
            }
            for q in questions
        ],
        "errors": errors,
        "submission_id": uuid.uuid4(),
    }
    return render(request, "annotation/item.html", context, status=400 if errors else 200)


def _block_raw_answers(request: HttpRequest, questions: list[Question]) -> dict:
    return {
        q.key: request.POST.getlist(q.key)
        if q.kind == Question.Kind.MULTIPLE_CHOICE
        else request.POST.get(q.key, "")
        for q in questions
    }


def _block_field(question: Question, error: str, value) -> dict:
    """What the block template needs for one question: its inputs, error and kept answer."""
    field = {"question": question, "error": error, "value": value}
    if question.kind == Question.Kind.LIKERT:
        field["choices"] = [
            (p, question.anchor_for(p)) for p in range(1, (question.points or 0) + 1)
        ]
    elif question.kind == Question.Kind.MULTIPLE_CHOICE:
        field["chosen"] = value if isinstance(value, list) else []
    elif question.kind == Question.Kind.FREE_TEXT:
        field["max_length"] = question.max_length or DEFAULT_MAX_LENGTH
    elif question.kind == Question.Kind.NUMBER:
        field["min"] = _number_text(question.min_value)
        field["max"] = _number_text(question.max_value)
    return field


def _number_text(value: float | None) -> str:
    """A bound as people write it: 7 rather than 7.0; empty when there is none."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@_require_participant
@require_http_methods(["GET", "HEAD", "POST"])
def block(request: HttpRequest, study: Study, participant: Participant, key: str):
    """One questionnaire block (demographics, a final comment…): all its questions on one page."""
    _step, current = selectors.participant_page(participant)
    if current is None or current.key != key:
        # Submitted blocks, later blocks and unknown keys all lead back to the current page.
        return _page_for(study, participant)
    questions = selectors.block_questions(current)
    errors: dict[str, str] = {}
    submitted: dict = {}
    if request.method == "POST":
        raw = _block_raw_answers(request, questions)
        try:
            services.record_block_answers(participant=participant, block_key=key, raw_answers=raw)
        except AnswersInvalid as exc:
            errors, submitted = exc.errors, raw
        else:
            participant.refresh_from_db()
            return _page_for(study, participant)
    progress = selectors.progress(participant, block=current)
    context = {
        "study": study,
        "questionnaire": current,
        "fields": [
            _block_field(q, errors.get(q.key, ""), submitted.get(q.key, "")) for q in questions
        ],
        "errors": errors,
        "page_number": progress.number,
        "pages": progress.total,
        "is_last": progress.is_last,
    }
    return render(request, "annotation/block.html", context, status=400 if errors else 200)


@_require_participant
@require_http_methods(["GET", "HEAD"])
def done(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "done":
        return _page_for(study, participant)
    return render(request, "annotation/done.html", {"study": study})


@_require_participant
@require_http_methods(["GET", "HEAD"])
def ended(request: HttpRequest, study: Study, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "ended":
        return _page_for(study, participant)
    return render(request, "annotation/ended.html", {"study": study, "participant": participant})


def entry_url(study: Study) -> str:
    return reverse("annotation:entry", kwargs={"slug": study.slug})
