"""Researcher pages: studies, their progress and response generation, the model registry."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from studies import access, selectors
from studies.access import Action
from studies.errors import StudyStateError
from studies.forms import GenerationJobForm, LanguageModelForm
from studies.generation import selectors as generation_selectors
from studies.generation import services as generation_services
from studies.models import LanguageModel
from studies.views.common import recruitment_link, study_for_request


@login_required
def study_list(request: HttpRequest) -> HttpResponse:
    studies = access.studies_for(request.user).order_by("-created_at")
    return render(
        request,
        "studies/study_list.html",
        {"rows": [selectors.study_progress(study) for study in studies]},
    )


@login_required
def study_detail(request: HttpRequest, slug: str, form: GenerationJobForm | None = None):
    study = study_for_request(request, slug)
    jobs = []
    for job in generation_selectors.jobs_for_study(study)[:20]:
        progress = generation_selectors.job_progress(job)
        failed = generation_selectors.failed_items(job, limit=20) if progress["failed"] else []
        jobs.append({"job": job, "progress": progress, "failed_items": failed})
    return render(
        request,
        "studies/study_detail.html",
        {
            "progress": selectors.study_progress(study),
            "problems": selectors.launch_problems(study)
            if study.status in ("draft", "review")
            else [],
            "recruitment_link": recruitment_link(
                request.build_absolute_uri(f"/s/{study.slug}/"), study
            ),
            "jobs": jobs,
            "any_running": any(not row["progress"]["finished"] for row in jobs),
            "generation_form": form or GenerationJobForm(),
            "can_generate": study.status in generation_services.GENERATABLE_STATUSES,
        },
        status=400 if form is not None else 200,
    )


@login_required
@require_POST
def start_generation(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    form = GenerationJobForm(request.POST)
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


@login_required
def model_list(request: HttpRequest) -> HttpResponse:
    form = LanguageModelForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            model = generation_services.register_model(actor=request.user, **form.cleaned_data)
        except ValueError as exc:
            form.add_error("backend_settings", str(exc))
        else:
            messages.success(request, f"Model {model.name} saved.")
            return redirect("studies:models")
    return render(
        request,
        "studies/model_list.html",
        {"models": LanguageModel.objects.all(), "form": form},
        status=400 if form.errors else 200,
    )
