"""Researcher pages of query–scenario generation: start jobs, follow rounds, verify, finalise."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.dispatch import QueueUnavailable
from modellab.classifiers.labels import INTENT_LABELS
from modellab.material.forms import offer_models
from modellab.material.views import job_list_context
from modellab.models import QueryScenarioJob
from modellab.query_scenarios import instruction as instructions
from modellab.query_scenarios import selectors, services
from modellab.query_scenarios.inputs import (
    InputFileError,
    categories_from_text,
    examples_from_upload,
)
from studies import access
from studies.access import Action
from studies.errors import StudyStateError
from studies.models import Study

MAX_UPLOAD_BYTES = 5 * 1024 * 1024


def _access(request):
    if not access.is_researcher(request.user):
        raise Http404("No such page.")


class JobForm(forms.Form):
    """A new job: models, categories with topics, seed examples, rounds and budget."""

    name = forms.SlugField(max_length=100, label="Name of the job")
    generator = forms.ModelChoiceField(queryset=None, label="Generator model", empty_label=None)
    intent_judge = forms.ModelChoiceField(
        queryset=None, label="Intent judge model", empty_label=None
    )
    study = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Or: write scenarios for a study's queries that have none",
        empty_label="— new queries —",
        help_text="Leave empty to write new queries for the categories below.",
    )
    categories = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Categories",
        help_text="One a line: 'name: definition'. Optional when writing scenarios for a study.",
    )
    topics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Topics per category",
        help_text="One a line: 'category name: topic; topic; topic'.",
    )
    examples = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Seed examples (JSONL)",
        help_text="One JSON object a line with category, topic, query, benign_scenario, "
        "malicious_scenario.",
    )
    examples_file = forms.FileField(
        required=False, label="Or a file of seed examples (CSV or JSONL)"
    )
    instruction = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        required=False,
        label="Generator instruction",
        help_text="Empty: the project's (shown below). New queries need {count}, {categories} "
        "and {examples}; scenarios for a study need {queries} and {examples}.",
    )
    intent_judge_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        label="Judging prompt",
        help_text="Empty: the project's intent prompt; it must contain {scenario} and {query}.",
    )
    embedding_model = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Embedding model (deduplication by similarity)",
        empty_label="— none: text only —",
    )
    per_round = forms.IntegerField(
        min_value=1, max_value=100, initial=20, label="Instances per round"
    )
    rounds = forms.IntegerField(min_value=1, max_value=20, initial=3, label="Rounds")
    examples_per_round = forms.IntegerField(
        min_value=0, max_value=50, initial=5, label="Examples per round"
    )
    budget = forms.IntegerField(
        min_value=1, initial=1000, label="Budget (generator and judge calls)"
    )
    near_duplicate_threshold = forms.FloatField(
        min_value=0.01, max_value=1, initial=0.9, label="Near-duplicate similarity"
    )
    embedding_threshold = forms.FloatField(
        min_value=0.01, max_value=1, initial=0.92, label="Embedding similarity"
    )
    verification_overlap = forms.IntegerField(
        min_value=1, max_value=10, initial=2, label="Coders per item (verification)"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        offer_models(self, user, chat=("generator", "intent_judge"))
        self.fields["study"].queryset = access.studies_for(user, Action.EDIT).filter(
            status=Study.Status.DRAFT
        )

    def clean(self) -> dict:
        data = super().clean()
        try:
            data["category_list"] = categories_from_text(
                data.get("categories", ""), data.get("topics", "")
            )
        except InputFileError as exc:
            for problem in exc.problems:
                self.add_error("categories" if problem.startswith("categ") else "topics", problem)
        upload = data.get("examples_file")
        try:
            examples = examples_from_upload(
                (data.get("examples") or "").encode("utf-8"), "examples.jsonl"
            )
            if upload is not None:
                if upload.size > MAX_UPLOAD_BYTES:
                    raise InputFileError(["the file is larger than 5 MB"])
                examples += examples_from_upload(upload.read(), upload.name)
            data["example_list"] = examples
        except InputFileError as exc:
            for problem in exc.problems:
                self.add_error("examples_file" if upload else "examples", problem)
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        return {
            "name": d["name"],
            "generator": d["generator"],
            "intent_judge": d["intent_judge"],
            "intent_judge_prompt": d.get("intent_judge_prompt") or None,
            "embedding_model": d.get("embedding_model"),
            "study": d.get("study"),
            "categories": d["category_list"] or None,
            "examples": d["example_list"],
            "instruction": d.get("instruction") or None,
            "per_round": d["per_round"],
            "rounds": d["rounds"],
            "examples_per_round": d["examples_per_round"],
            "budget": d["budget"],
            "near_duplicate_threshold": d["near_duplicate_threshold"],
            "embedding_threshold": d["embedding_threshold"],
            "verification_overlap": d["verification_overlap"],
        }


def _page(request, *, form=None, status=200) -> HttpResponse:
    user = request.user
    context = job_list_context(
        user,
        jobs=selectors.jobs_for,
        progress=selectors.job_progress,
        form=form or JobForm(user=user),
    )
    context["default_instructions"] = instructions.DEFAULT_INSTRUCTIONS
    return render(request, "modellab/query_scenarios/page.html", context, status=status)


@login_required
def query_scenarios_page(request: HttpRequest) -> HttpResponse:
    """GET: your jobs and the form; POST: start a job."""
    _access(request)
    if request.method != "POST":
        return _page(request)
    form = JobForm(request.POST, request.FILES, user=request.user)
    if form.is_valid():
        try:
            job = services.start_query_scenario_job(owner=request.user, **form.service_kwargs())
        except services.QueryScenarioInputError as exc:
            for field, problem in exc.problems.items():
                name = field.split("[")[0].split(".")[0]
                if name in form.fields:
                    form.add_error(name, f"{field}: {problem}" if name != field else problem)
                else:
                    form.add_error(None, f"{field}: {problem}")
        except QueueUnavailable as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(reverse("modellab:query-scenarios-job", args=[job.pk]))
    return _page(request, form=form, status=400)


@login_required
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A job: progress, rounds, candidates with the judge's readings, verification, the set."""
    _access(request)
    job: QueryScenarioJob = selectors.job_for(request.user, pk)
    progress = selectors.job_progress(job)
    rows = selectors.verification_rows(job)
    context = {
        "nav": "lab",
        "job": job,
        "kind": services.job_kind(job),
        "progress": progress,
        "rounds": list(job.round_set.order_by("number")),
        "candidates": list(selectors.candidates(job)),
        "verification": rows,
        "ties": [r for r in rows if r["tie"]],
        "uncoded": sum(1 for r in rows if not r["complete"]),
        "labels": INTENT_LABELS,
        "studies": access.studies_for(request.user, Action.EDIT).filter(status=Study.Status.DRAFT),
    }
    return render(request, "modellab/query_scenarios/job.html", context)


def _back(job) -> HttpResponse:
    return redirect(reverse("modellab:query-scenarios-job", args=[job.pk]))


@login_required
@require_POST
def cancel_job(request: HttpRequest, pk: int) -> HttpResponse:
    _access(request)
    job = selectors.job_for(request.user, pk)
    services.cancel_query_scenario_job(job=job, actor=request.user)
    return _back(job)


@login_required
@require_POST
def resume_job(request: HttpRequest, pk: int) -> HttpResponse:
    _access(request)
    job = selectors.job_for(request.user, pk)
    try:
        services.resume_query_scenario_job(job=job, actor=request.user)
    except (ValueError, PermissionDenied, QueueUnavailable) as exc:
        messages.error(request, str(exc))
    return _back(job)


@login_required
@require_POST
def finalise_job(request: HttpRequest, pk: int) -> HttpResponse:
    """Finalise with the researcher's decisions of the ties (fields ``tie:<source key>``)."""
    _access(request)
    job = selectors.job_for(request.user, pk)
    decisions = {
        key[len("tie:") :]: value
        for key, value in request.POST.items()
        if key.startswith("tie:") and value
    }
    try:
        services.finalise_query_scenario_job(job=job, actor=request.user, tie_decisions=decisions)
    except (ValueError, PermissionDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Finalised: the kept set is ready.")
    return _back(job)


@login_required
@require_POST
def add_to_study(request: HttpRequest, pk: int) -> HttpResponse:
    _access(request)
    job = selectors.job_for(request.user, pk)
    slug = request.POST.get("study", "")
    study = access.studies_for(request.user, Action.EDIT).filter(slug=slug).first()
    if study is None:
        messages.error(request, "Choose a draft study you may edit.")
        return _back(job)
    try:
        services.add_to_study(job=job, study=study, actor=request.user)
    except (ValueError, StudyStateError, PermissionDenied) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Added to study {study.slug}.")
    return _back(job)


def _download(job, chunks, suffix: str, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{job.name}-stimuli.{suffix}"'
    return response


@login_required
def stimuli_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The kept set as a wide stimuli CSV with provenance columns."""
    _access(request)
    job = selectors.job_for(request.user, pk)
    return _download(job, selectors.stimuli_csv(job), "csv", "text/csv")


@login_required
def stimuli_jsonl(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The kept set as a wide stimuli JSONL file with provenance fields."""
    _access(request)
    job = selectors.job_for(request.user, pk)
    return _download(job, selectors.stimuli_jsonl(job), "jsonl", "application/x-ndjson")
