"""Preview: a researcher takes the study as a participant would, in the participant's own
page templates, with the position and answers kept only in the researcher's session.

Nothing is written to any participant-side table and no slot is used; the pages carry a
"Preview — nothing is recorded" banner.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from annotation.answers import parse_answers, parse_block_answers
from studies import preview
from studies.access import Action
from studies.design import PlannedSlot, describe_levels
from studies.models import QuestionnaireBlock, Study
from studies.views.common import study_for_request


def _key(study: Study) -> str:
    return f"preview:{study.pk}"


def _state(request: HttpRequest, study: Study) -> dict | None:
    return request.session.get(_key(study))


def _save(request: HttpRequest, study: Study, state: dict) -> None:
    request.session[_key(study)] = state


def _go(study: Study) -> HttpResponse:
    return redirect("studies:preview-page", slug=study.slug)


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def preview_start(request: HttpRequest, slug: str) -> HttpResponse:
    """What the preview is, which example participant to be, and the button to start."""
    study = study_for_request(request, slug, Action.EDIT)
    problems = preview.preview_problems(study)
    examples = preview.example_count(study)
    if request.method == "POST" and not problems:
        try:
            example = int(request.POST.get("example", "1")) - 1
        except ValueError:
            example = 0
        example = min(max(example, 0), max(examples - 1, 0))
        _save(request, study, {"example": example, "index": 0, "topics": {}, "answers": {}})
        return _go(study)
    choices = []
    if not problems:
        for n in range(examples):
            slot = preview.example_slot(study, n)
            choices.append({"number": n + 1, "cell": describe_levels(slot.cell) or "—"})
    return render(
        request,
        "studies/preview/start.html",
        {
            "nav": "studies",
            "study": study,
            "problems": problems,
            "choices": choices,
            "running": _state(request, study) is not None,
        },
        status=409 if problems and request.method == "POST" else 200,
    )


def _banner(study: Study, slot: PlannedSlot, state: dict) -> dict:
    return {
        "study": study,
        "example": state["example"] + 1,
        "cell": describe_levels(slot.cell),
    }


def _block(study: Study, key: str) -> QuestionnaireBlock:
    return QuestionnaireBlock.objects.get(study=study, key=key)


def _block_fields(questions, errors: dict, submitted: dict) -> list[dict]:
    # The participant block page's own field builder, so the preview shows the same inputs.
    from annotation.views import _block_field

    return [_block_field(q, errors.get(q.key, ""), submitted.get(q.key, "")) for q in questions]


def _item_entries(questions, errors: dict, submitted: dict) -> list[dict]:
    return [
        {
            "question": q,
            "choices": [(p, q.anchor_for(p)) for p in range(1, (q.points or 0) + 1)],
            "error": errors.get(q.key, ""),
            "value": submitted.get(q.key, ""),
        }
        for q in questions
    ]


@never_cache
@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def preview_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The preview's current page; a POST answers it and moves on (post/redirect/get)."""
    study = study_for_request(request, slug, Action.EDIT)
    state = _state(request, study)
    if state is None:
        return redirect("studies:preview", slug=study.slug)
    try:
        slot = preview.example_slot(study, state["example"])
    except ValueError as exc:
        messages.error(request, f"The study cannot be previewed: {exc}")
        return redirect("studies:preview", slug=study.slug)
    pages = preview.pages(study, slot)
    index = min(state["index"], len(pages) - 1)
    page = pages[index]
    answerable = len(pages) - 3  # every page but consent, instructions and done
    context = {"preview": _banner(study, slot, state), "study": study}
    errors: dict[str, str] = {}
    submitted: dict = {}

    def advance() -> HttpResponse:
        state["index"] = index + 1
        _save(request, study, state)
        return _go(study)

    if page == preview.CONSENT:
        if state.get("declined"):
            if request.method == "POST" and request.POST.get("decision") == "reconsider":
                state["declined"] = False
                _save(request, study, state)
                return _go(study)
            return render(request, "studies/preview/declined.html", context)
        if request.method == "POST":
            decision = request.POST.get("decision")
            if decision == "agree":
                return advance()
            if decision == "decline":
                state["declined"] = True
                _save(request, study, state)
                return _go(study)
        return render(request, "studies/preview/consent.html", context)

    if page == preview.INSTRUCTIONS:
        if request.method == "POST":
            return advance()
        return render(
            request, "studies/preview/instructions.html", {**context, "pages": answerable}
        )

    if page == preview.DONE:
        return render(
            request,
            "studies/preview/done.html",
            {**context, "answers": state.get("answers", {}), "pages": pages},
        )

    kind, _, name = page.partition(":")
    number = index - 1  # page 1 is the one right after the instructions
    progress = {"page_number": number, "pages": answerable, "is_last": number >= answerable}

    if kind == "block":
        block = _block(study, name)
        questions = preview.block_questions(block)
        if request.method == "POST":
            raw = {
                q.key: request.POST.getlist(q.key)
                if q.kind == "multiple_choice"
                else request.POST.get(q.key, "")
                for q in questions
            }
            parsed = parse_block_answers(questions, raw)
            if parsed.ok:
                state["answers"][page] = raw
                return advance()
            errors, submitted = parsed.errors, raw
        return render(
            request,
            "studies/preview/block.html",
            {
                **context,
                **progress,
                # "block" is taken in templates ({% block %}'s block.super): the page reads this.
                "questionnaire": block,
                "fields": _block_fields(questions, errors, submitted),
                "errors": errors,
            },
            status=400 if errors else 200,
        )

    position = int(name)
    item = next(i for i in slot.items if i.position == position)
    chosen = state["topics"].get(str(position))
    seen = [pk for pos, pk in state["topics"].items() if pos != str(position)]
    item_page = preview.item_page(study, item, chosen_query=chosen, seen=seen)
    if request.method == "POST" and "topic" in request.POST:
        offered = {q.pk for q in item_page.topics}
        try:
            picked = int(request.POST["topic"])
        except ValueError:
            picked = None
        if picked in offered:
            state["topics"][str(position)] = picked
            _save(request, study, state)
            return _go(study)
        errors["topic"] = "Please choose one of the topics listed."
    elif request.method == "POST" and (item_page.trial is not None or item.kind == "attention"):
        questions = preview.item_questions(study, item)
        raw = {q.key: request.POST.get(q.key, "") for q in questions}
        parsed = parse_answers(questions, raw)
        if parsed.ok:
            state["answers"][page] = raw
            return advance()
        errors, submitted = parsed.errors, raw
    showing = item_page.trial is not None or item.kind == "attention"
    questions = preview.item_questions(study, item) if showing else []
    return render(
        request,
        "studies/preview/item.html",
        {
            **context,
            **progress,
            "page": item_page,
            "position": position,
            "questions": _item_entries(questions, errors, submitted),
            "errors": errors,
            "submission_id": uuid.uuid4(),
        },
        status=400 if errors else 200,
    )
