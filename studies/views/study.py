"""Researcher pages: the study list and the study page, the hub of everything about a study."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from studies import access, dashboard, lifecycle, selectors
from studies.access import Action
from studies.forms import GenerationJobForm
from studies.generation import selectors as generation_selectors
from studies.generation import services as generation_services
from studies.models import Study
from studies.views.common import recruitment_link, study_for_request
from studies.views.lifecycle import available_actions

AUDIT_PAGE_SIZE = 50


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    show_archived = request.GET.get("archived") == "1"
    studies = access.studies_for(request.user).order_by("-created_at")
    archived = studies.filter(status=Study.Status.ARCHIVED).count()
    if not show_archived:
        studies = studies.exclude(status=Study.Status.ARCHIVED)
    return render(
        request,
        "studies/study_list.html",
        {
            "nav": "studies",
            "rows": [dashboard.study_progress(study) for study in studies],
            "show_archived": show_archived,
            "archived_count": archived,
        },
    )


def _links(study: Study, can_edit: bool, can_see_ids: bool = False) -> list[dict]:
    """Where a researcher goes from the study page; plain paths, so a page another part of
    the platform has not added yet costs a 404, never a crash here."""
    base = f"/studies/{study.slug}/"
    links = [
        ("Design", "design/", can_edit),
        ("Stimuli", "stimuli/upload/", can_edit),
        ("Queries", "queries/", True),
        ("Download stimuli (CSV)", "stimuli.csv", True),
        ("Review texts", "review/", True),
        ("Preview as a participant", "preview/", can_edit),
        ("Results and statistics", "results/", True),
        ("Power planning", "power/", True),
        ("Model behaviour (response types models choose)", "lab/behaviour/", True),
        ("Reward-model scores", "lab/rewards/", True),
        ("Exports and replication package", "exports/", True),
        ("Participants and quality flags", "participants/", True),
        ("Members", "members/", True),
        ("Audit log", "audit/", True),
        ("Approve, reject and bonus lists", "payments/", can_see_ids),
    ]
    return [{"label": label, "url": base + path} for label, path, shown in links if shown]


@login_required
def study_detail(
    request: HttpRequest, slug: str, form: GenerationJobForm | None = None
) -> HttpResponse:
    study = study_for_request(request, slug)
    can_edit = access.can(request.user, Action.EDIT, study)
    jobs = []
    for job in generation_selectors.jobs_for_study(study)[:20]:
        progress = generation_selectors.job_progress(job)
        failed = generation_selectors.failed_items(job, limit=20) if progress["failed"] else []
        jobs.append({"job": job, "progress": progress, "failed_items": failed})
    launchable = study.status in (Study.Status.DRAFT, Study.Status.REVIEW)
    has_slots = lifecycle.slot_count(study) > 0
    numbers = dashboard.dashboard_numbers(study) if has_slots else None
    context = {
        "nav": "studies",
        "study": study,
        "can_edit": can_edit,
        "problems": selectors.launch_problems(study) if launchable else [],
        "launchable": launchable,
        "actions": available_actions(study, request.user),
        "awaiting_full_launch": lifecycle.awaiting_full_launch(study),
        "links": _links(
            study, can_edit, access.can(request.user, Action.SEE_RECRUITMENT_IDS, study)
        ),
        "recruitment_link": recruitment_link(
            request.build_absolute_uri(f"/s/{study.slug}/"), study
        ),
        "numbers": numbers,
        "dashboard_payload": {
            "url": f"/studies/{study.slug}/dashboard.json",
            "figures": dashboard.dashboard_figures(numbers),
        }
        if numbers
        else None,
        "jobs": jobs,
        "any_running": any(not row["progress"]["finished"] for row in jobs),
        "generation_form": form or GenerationJobForm(user=request.user),
        "can_generate": can_edit and study.status in generation_services.GENERATABLE_STATUSES,
    }
    return render(
        request, "studies/study_detail.html", context, status=400 if form is not None else 200
    )


@login_required
def audit_log(request: HttpRequest, slug: str) -> HttpResponse:
    """Every audited change of the study, newest first."""
    study = study_for_request(request, slug)
    events = study.audit_events.select_related("actor").order_by("-created_at", "-pk")
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "studies/audit.html", {"nav": "studies", "study": study, "page": page})
