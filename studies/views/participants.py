"""Researcher pages of a study's participants: the table with quality flags, and the decisions.

Viewers see the table; editors and owners run the quality checks and decide each exclusion
(confirm, with an optional replacement slot, or keep). Every decision needs a reason and is
an audit row (annotation.services). Forms post and redirect back, so the page needs no
JavaScript.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from annotation.models import Participant
from studies import access
from studies.access import Action
from studies.datasets.quality import RULE_LABELS, RULES
from studies.views.common import study_for_request

PAGE_SIZE = 50
FLAG_CHOICES = (
    ("", "Any"),
    ("flagged", "Flagged by any rule"),
    ("undecided", "Flagged, no decision yet"),
    ("excluded", "Excluded"),
    ("not_flagged", "Not flagged"),
    *((rule, f"Flagged: {RULE_LABELS[rule].lower()}") for rule in RULES),
)
STATUS_CHOICES = (("", "Any"), *Participant.Status.choices)


def _filters(data) -> dict[str, str]:
    """The table's filters from a query string or a form, unknown values dropped."""
    status = data.get("status", "")
    flag = data.get("flag", "")
    return {
        "status": status if status in dict(STATUS_CHOICES) else "",
        "flag": flag if flag in dict(FLAG_CHOICES) else "",
        "page": data.get("page", "") if str(data.get("page", "")).isdigit() else "",
    }


def _back(slug: str, data) -> HttpResponseRedirect:
    """Back to the table with the filters it was showing (only the known ones)."""
    query = urlencode({k: v for k, v in _filters(data).items() if v})
    url = reverse("studies:participants", kwargs={"slug": slug})
    return HttpResponseRedirect(f"{url}?{query}" if query else url)


def _minutes_seconds(participant: Participant) -> str:
    if participant.consented_at is None or participant.completed_at is None:
        return ""
    seconds = int((participant.completed_at - participant.consented_at).total_seconds())
    return f"{seconds // 60} min {seconds % 60:02d} s"


def _cell(participant: Participant) -> str:
    cell = participant.slot.cell if participant.slot_id else None
    if not cell:
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(cell.items()))


@login_required
@require_http_methods(["GET", "HEAD"])
def participant_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    filters = _filters(request.GET)
    rows = annotation_selectors.participants_table(
        study, status=filters["status"], flag=filters["flag"]
    )
    page = Paginator(rows, PAGE_SIZE).get_page(filters["page"] or 1)
    for participant in page.object_list:
        participant.total_time = _minutes_seconds(participant)
        participant.cell_label = _cell(participant)
    query = urlencode({k: v for k, v in filters.items() if v and k != "page"})
    return render(
        request,
        "studies/participants.html",
        {
            "nav": "studies",
            "study": study,
            "page": page,
            "filters": filters,
            "query": query,
            "status_choices": STATUS_CHOICES,
            "flag_choices": FLAG_CHOICES,
            "numbers": annotation_selectors.quality_numbers(study),
            "rules_on": [
                RULE_LABELS[rule]
                for rule in RULES
                if (study.quality.get(rule) or {}).get("enabled")
            ],
            "can_decide": access.can(request.user, Action.EDIT, study),
        },
    )


@login_required
@require_POST
def run_quality_checks(request: HttpRequest, slug: str) -> HttpResponse:
    """Screen every finished participant now, against today's speeder median."""
    study = study_for_request(request, slug, Action.EDIT)
    outcome = annotation_services.screen_participants(study=study, actor=request.user)
    messages.success(
        request,
        f"Quality checks run on {outcome.screened} finished participants: "
        f"{outcome.flagged} flagged, {outcome.excluded} excluded.",
    )
    return _back(slug, request.POST)


@login_required
@require_POST
def decide(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Confirm (decision=exclude, optionally with a replacement slot) or override (keep)."""
    study = study_for_request(request, slug, Action.EDIT)
    participant = get_object_or_404(Participant, pk=pk, study=study)
    decision = request.POST.get("decision")
    reason = request.POST.get("reason", "")
    label = participant.pseudonym[:10]
    try:
        if decision == "exclude":
            annotation_services.exclude_participant(
                participant=participant,
                reason=reason,
                actor=request.user,
                replace=request.POST.get("replace") == "on",
            )
            messages.success(request, f"Participant {label} is excluded.")
        elif decision == "keep":
            annotation_services.keep_participant(
                participant=participant, reason=reason, actor=request.user
            )
            messages.success(request, f"Participant {label} is kept in the data.")
        else:
            messages.error(request, "Nothing changed: choose to exclude or to keep.")
    except ValueError as exc:
        messages.error(request, f"Nothing changed for participant {label}: {exc}.")
    return _back(slug, request.POST)


@login_required
@require_POST
def confirm_flagged(request: HttpRequest, slug: str) -> HttpResponse:
    """Confirm the exclusion of every flagged participant who has no decision yet."""
    study = study_for_request(request, slug, Action.EDIT)
    try:
        n = annotation_services.confirm_flagged(
            study=study,
            reason=request.POST.get("reason", ""),
            actor=request.user,
            replace=request.POST.get("replace") == "on",
        )
    except ValueError as exc:
        messages.error(request, f"Nothing changed: {exc}.")
    else:
        messages.success(request, f"{n} flagged participants confirmed as excluded.")
    return _back(slug, request.POST)
