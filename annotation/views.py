"""Participant pages: entry, consent, instructions, questionnaire blocks, items, completion.

Every page works without JavaScript; each POST redirects (post/redirect/get), refused answers
included, so refresh, back and double submit land on the participant's current page. A signed
cookie per study says which participant a browser is (annotation.browser): a page reads the
participant with its study once, and a submit hands the participant's id to its service, which
reads it once under a row lock. The study's fixed parts come from annotation.material.
"""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from annotation import arrivals, browser, devices, selectors, services
from annotation.answers import DEFAULT_MAX_LENGTH
from annotation.errors import (
    AnswersInvalid,
    ParticipationEnded,
    StudyFull,
    StudyNotOpen,
    TopicInvalid,
)
from annotation.material import slot_item
from annotation.models import Participant
from studies.domain import STUDY_ARRIVAL_STATUSES
from studies.models import Question, Study

# New participants may join only a live study (the status groups live in studies.domain).
OPEN_STATUSES = STUDY_ARRIVAL_STATUSES
# Fields of every participant form that are not answers.
_FORM_FIELDS = frozenset({"csrfmiddlewaretoken", "submission_id", "client_ms"})


def _see_other(url: str) -> HttpResponseRedirect:
    # 303: after a POST the browser fetches the next page with GET, whatever the POST's fate.
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def _page_for(participant: Participant) -> HttpResponse:
    step, block = selectors.participant_page(participant)
    slug = participant.study.slug
    if step == "item":
        url = reverse("annotation:item", kwargs={"slug": slug, "position": participant.position})
    elif step == "block":
        url = reverse("annotation:block", kwargs={"slug": slug, "key": block.key})
    else:
        url = reverse(f"annotation:{step}", kwargs={"slug": slug})
    return _see_other(url)


def _study(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


def _slug(request: HttpRequest) -> str:
    return request.resolver_match.kwargs["slug"]


def _closed(request: HttpRequest, study: Study) -> HttpResponse:
    return render(request, "annotation/closed.html", {"study": study}, status=403)


def _full(request: HttpRequest, study: Study) -> HttpResponse:
    return render(request, "annotation/full.html", {"study": study})


def _no_session(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study(slug)
    return render(request, "annotation/no_session.html", {"study": study}, status=403)


@never_cache
@require_http_methods(["GET", "HEAD"])
def entry(request: HttpRequest, slug: str) -> HttpResponse:
    """The recruitment link: find or create this person's participant, then resume."""
    study = _study(slug)
    try:
        link = arrivals.recruitment_link(request.GET, study.recruitment_params)
    except arrivals.RecruitmentLinkInvalid:
        context = {"study": study, "invalid": True}
        return render(request, "annotation/needs_link.html", context, status=400)
    own_pk = browser.participant_id(request, slug)
    participant = None
    if link.participant_id:
        # The recruitment id names the person; it wins over whatever this browser held.
        participant = selectors.participant_by_external_id(study, link.participant_id)
        if (
            participant is not None
            and participant.pk != own_pk
            and not selectors.may_resume_elsewhere(participant, link.session_id)
        ):
            return render(request, "annotation/open_elsewhere.html", {"study": study}, status=409)
    elif own_pk is not None:
        participant = Participant.objects.filter(pk=own_pk, study=study).first()
        if participant is not None:
            participant.study = study
    if participant is None:
        if not link.participant_id and not getattr(
            study, "anonymous_links", False
        ):  # TEMP until field lands
            return render(request, "annotation/needs_link.html", {"study": study}, status=400)
        if study.status not in OPEN_STATUSES:
            return _closed(request, study)
        wait = arrivals.admit_arrival(study_pk=study.pk, address=arrivals.client_address(request))
        if wait is not None:
            context = {"study": study, "retry_after": wait}
            response = render(request, "annotation/busy.html", context, status=429)
            response["Retry-After"] = str(wait)
            return response
        if not selectors.has_free_slot(study):
            return _full(request, study)
        user_agent = request.META.get("HTTP_USER_AGENT", "")
        participant = services.join_study(
            study=study,
            external_id=link.participant_id or None,
            recruitment=link.values,
            device_key=devices.device_key(user_agent, arrivals.client_address(request)),
            device_class=devices.device_class(user_agent),
        )
    response = _page_for(participant)
    response.status_code = 302
    browser.remember_participant(response, slug, participant.pk)
    return response


def _participant_page(view):
    """A page of the participant's own session. GET and HEAD get the participant with its
    study (one read); POST gets a reference by id for a service that locks and reads it."""

    def wrapped(request: HttpRequest, slug: str, *args, **kwargs) -> HttpResponse:
        pk = browser.participant_id(request, slug)
        if pk is None:
            return _no_session(request, slug)
        if request.method == "POST":
            return view(request, Participant(pk=pk), *args, **kwargs)
        participant = selectors.participant_for_page(pk, slug)
        if participant is None:
            return _no_session(request, slug)
        if services.is_overdue(participant):
            participant = services.time_out_participant(participant=participant)
        return view(request, participant, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return never_cache(wrapped)


def _study_of(participant: Participant) -> Study:
    """The study of a participant known by id only (rare pages after a refused consent)."""
    return Participant.objects.select_related("study").get(pk=participant.pk).study


@_participant_page
@require_http_methods(["GET", "HEAD"])
def resume(request: HttpRequest, participant: Participant) -> HttpResponse:
    return _page_for(participant)


@_participant_page
@require_http_methods(["GET", "HEAD", "POST"])
def consent(request: HttpRequest, participant: Participant) -> HttpResponse:
    if request.method == "POST":
        decision = request.POST.get("decision")
        if decision == "decline":
            return _page_for(services.decline_consent(participant=participant))
        if decision != "agree":
            return _see_other(request.path)
        try:
            services.give_consent(participant=participant)
        except StudyNotOpen:
            return _closed(request, _study_of(participant))
        except StudyFull:
            return _full(request, _study_of(participant))
        except ParticipationEnded:
            pass
        # Consent leads to the instructions; that page sends anyone else on to their page.
        return _see_other(reverse("annotation:instructions", kwargs={"slug": _slug(request)}))
    if selectors.participant_step(participant) not in ("consent", "declined"):
        return _page_for(participant)
    return render(request, "annotation/consent.html", {"study": participant.study})


@_participant_page
@require_http_methods(["GET", "HEAD"])
def declined(request: HttpRequest, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "declined":
        return _page_for(participant)
    return render(request, "annotation/declined.html", {"study": participant.study})


@_participant_page
@require_http_methods(["GET", "HEAD", "POST"])
def instructions(request: HttpRequest, participant: Participant) -> HttpResponse:
    if request.method == "POST":
        return _page_for(services.mark_instructions_read(participant=participant))
    if selectors.participant_step(participant) != "instructions":
        return _page_for(participant)
    context = {"study": participant.study, "pages": selectors.page_count(participant)}
    return render(request, "annotation/instructions.html", context)


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


def _refused(request: HttpRequest, page: str, errors: dict, values: dict) -> HttpResponse | None:
    """Send a refused submit back to its page with its errors and answers (303: a reload then
    never posts again); None when they do not fit in a cookie and the page is shown at once."""
    response = _see_other(request.path)
    if browser.keep_form(response, _slug(request), page=page, errors=errors, values=values):
        return response
    return None


def _answers(request: HttpRequest) -> dict[str, str]:
    return {key: value for key, value in request.POST.items() if key not in _FORM_FIELDS}


@_participant_page
@require_http_methods(["GET", "HEAD", "POST"])
def item(request: HttpRequest, participant: Participant, position: int) -> HttpResponse:
    """One item: pick a topic (if the study asks), then read and rate the response."""
    page = f"item:{position}"
    if request.method == "POST" and "topic" in request.POST:
        try:
            services.choose_topic(
                participant=participant, position=position, query_pk=int(request.POST["topic"])
            )
        except (TopicInvalid, ValueError):
            errors = {"topic": _("Please choose one of the topics listed.")}
            return _refused(request, page, errors, {}) or _see_other(request.path)
        return _see_other(request.path)
    if request.method == "POST":
        raw = _answers(request)
        try:
            outcome = services.record_answers(
                participant=participant,
                position=position,
                raw_answers=raw,
                submission_id=_submission_id(request.POST.get("submission_id")),
                client_ms=_client_ms(request.POST.get("client_ms")),
            )
        except AnswersInvalid as exc:
            return _refused(request, page, exc.errors, raw) or _see_other(request.path)
        return _page_for(outcome.participant)
    if selectors.participant_step(participant) != "item" or position != participant.position:
        return _page_for(participant)
    errors, submitted = browser.kept_form(request, _slug(request), page)
    response = _item_page(request, participant, position, errors, submitted)
    browser.forget_form(request, response, _slug(request))
    return response


def _item_page(
    request: HttpRequest, participant: Participant, position: int, errors: dict, submitted: dict
) -> HttpResponse:
    study = participant.study
    item_ = slot_item(participant.slot_id, position)
    trial = services.show_item(participant=participant, position=position)
    page = selectors.item_page(participant, trial, item_)
    questions = services.item_questions(item_, study) if trial is not None else []
    progress = selectors.progress(participant, position=position, choosing_topic=trial is None)
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
                "value": str(submitted.get(q.key, "")),
            }
            for q in questions
        ],
        "errors": errors,
        "submission_id": uuid.uuid4(),
    }
    return render(request, "annotation/item.html", context)


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


def _block_answers(request: HttpRequest) -> dict[str, list[str]]:
    # Every field as a list: multiple choice needs them all, the other kinds read the first.
    return {key: request.POST.getlist(key) for key in request.POST if key not in _FORM_FIELDS}


@_participant_page
@require_http_methods(["GET", "HEAD", "POST"])
def block(request: HttpRequest, participant: Participant, key: str) -> HttpResponse:
    """One questionnaire block (demographics, a final comment…): all its questions on one page."""
    page = f"block:{key}"
    if request.method == "POST":
        raw = _block_answers(request)
        try:
            outcome = services.record_block_answers(
                participant=participant, block_key=key, raw_answers=raw
            )
        except AnswersInvalid as exc:
            return _refused(request, page, exc.errors, raw) or _see_other(request.path)
        return _page_for(outcome.participant)
    _step, current = selectors.participant_page(participant)
    if current is None or current.key != key:
        # Submitted blocks, later blocks and unknown keys all lead back to the current page.
        return _page_for(participant)
    errors, submitted = browser.kept_form(request, _slug(request), page)
    questions = selectors.block_questions(current, study=participant.study)
    progress = selectors.progress(participant, block=current)
    fields = []
    for q in questions:
        value = submitted.get(q.key, [])
        if q.kind != Question.Kind.MULTIPLE_CHOICE:
            value = value[0] if isinstance(value, list) and value else value or ""
        fields.append(_block_field(q, errors.get(q.key, ""), value))
    context = {
        "study": participant.study,
        "questionnaire": current,
        "fields": fields,
        "errors": errors,
        "page_number": progress.number,
        "pages": progress.total,
        "is_last": progress.is_last,
    }
    response = render(request, "annotation/block.html", context)
    browser.forget_form(request, response, _slug(request))
    return response


@_participant_page
@require_http_methods(["GET", "HEAD"])
def done(request: HttpRequest, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "done":
        return _page_for(participant)
    return render(request, "annotation/done.html", {"study": participant.study})


@_participant_page
@require_http_methods(["GET", "HEAD"])
def ended(request: HttpRequest, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "ended":
        return _page_for(participant)
    context = {"study": participant.study, "participant": participant}
    return render(request, "annotation/ended.html", context)


@_participant_page
@require_http_methods(["GET", "HEAD", "POST"])
def withdraw(request: HttpRequest, participant: Participant) -> HttpResponse:
    """Leave the study: GET asks for confirmation (and whether to delete the answers), POST
    withdraws. Linked from every page of someone taking part."""
    if request.method == "POST":
        services.withdraw_participant(
            participant=participant, delete_answers=request.POST.get("delete_answers") == "on"
        )
        return _see_other(reverse("annotation:withdrawn", kwargs={"slug": _slug(request)}))
    if participant.status != Participant.Status.ACTIVE:
        return _page_for(participant)
    return render(request, "annotation/withdraw.html", {"study": participant.study})


@_participant_page
@require_http_methods(["GET", "HEAD"])
def withdrawn(request: HttpRequest, participant: Participant) -> HttpResponse:
    if selectors.participant_step(participant) != "withdrawn":
        return _page_for(participant)
    context = {"study": participant.study, "answers_kept": selectors.has_answers(participant)}
    return render(request, "annotation/withdrawn.html", context)


def entry_url(study: Study) -> str:
    return reverse("annotation:entry", kwargs={"slug": study.slug})
