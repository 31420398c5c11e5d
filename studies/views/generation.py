"""Researcher pages: starting and cancelling response generation (shown on the study page)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from studies.access import Action
from studies.errors import StudyStateError
from studies.forms import GenerationJobForm
from studies.generation import services as generation_services
from studies.views.common import study_for_request
from studies.views.study import study_detail


@login_required
@require_POST
def start_generation(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    form = GenerationJobForm(request.POST, user=request.user)
    if not form.is_valid():
        return study_detail(request, slug, form=form)
    try:
        job = generation_services.start_generation_job(
            study=study, actor=request.user, **form.job_arguments()
        )
    except (StudyStateError, ValueError) as exc:
        form.add_error(None, str(exc))
        return study_detail(request, slug, form=form)
    messages.success(request, f"Job {job.pk} started: {job.items.count()} texts to write.")
    return redirect("studies:detail", slug=slug)


@login_required
@require_POST
def cancel_generation(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    job = study.generation_jobs.filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    generation_services.cancel_job(job=job, actor=request.user)
    messages.info(request, f"Job {job.pk} cancelled; texts already written are kept.")
    return redirect("studies:detail", slug=slug)
