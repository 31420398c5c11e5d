"""Researcher pages of pseudo-harmful generation: the job list and form, a job's progress,
rounds, ranked candidates, duplicates and labels; cancel and resume."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.dispatch import QueueUnavailable
from modellab.material.dedup import DEFAULT_EMBEDDING_THRESHOLD, DEFAULT_NEAR_THRESHOLD
from modellab.material.forms import lines, offer_models
from modellab.material.views import job_list_context
from modellab.pseudo_harmful import selectors, services
from modellab.pseudo_harmful.instruction import DEFAULT_INSTRUCTION, LENGTHS


class JobForm(forms.Form):
    """Seed material (one entry a line), models, rounds, budget and checks of a new job."""

    name = forms.SlugField(max_length=100, label="Name of the job")
    generator = forms.ModelChoiceField(queryset=None, label="Generator model", empty_label=None)
    targets = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Target models"
    )
    words = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Harmful-looking words or phrases",
        help_text="One a line, e.g. kill, attack, hack.",
    )
    topics = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Topics",
        help_text="One a line; empty: any everyday topic.",
    )  # fmt: skip
    categories = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="Categories",
        help_text="One a line (at most 64 characters each).",
    )  # fmt: skip
    examples = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Example prompts",
        help_text="One a line; round 1 shows them to the generator.",
    )
    length = forms.ChoiceField(
        choices=[(key, f"{key}: {text}") for key, text in LENGTHS.items()],
        widget=forms.RadioSelect,
        initial="short",
        label="Length",
    )
    style = forms.CharField(max_length=300, required=False, label="Style")
    instruction = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 14}),
        initial=DEFAULT_INSTRUCTION,
        label="Instruction to the generator",
        help_text="Must contain {count} and {examples}; may use {words}, {topics}, "
        "{categories}, {length}, {style}. Write literal braces doubled: {{ }}.",
    )
    per_round = forms.IntegerField(min_value=1, initial=20, label="Candidates per round")
    rounds = forms.IntegerField(min_value=1, initial=3, label="Rounds")
    examples_per_round = forms.IntegerField(
        min_value=0, initial=5, label="Best candidates shown as examples in the next round"
    )
    samples = forms.IntegerField(
        min_value=1, initial=1, label="Samples per target (k)",
        help_text="Each target answers each candidate k times.",
    )  # fmt: skip
    refusal = forms.ChoiceField(
        choices=[
            ("full_partial", "Full or partial refusal counts as a refusal"),
            ("full", "Only a full refusal counts"),
        ],
        widget=forms.RadioSelect,
        initial="full_partial",
        label="Refusal",
    )
    classifier = forms.ChoiceField(
        choices=[
            ("string_match", "string_match: refusal phrases near the start"),
            ("llm_judge", "llm_judge: a model of the registry judges each response"),
        ],
        widget=forms.RadioSelect,
        initial="string_match",
        label="Classifier of target responses (three-way)",
    )
    classifier_model = forms.ModelChoiceField(
        queryset=None, required=False, label="Judge model (llm_judge)", empty_label="—"
    )
    classifier_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Judging prompt (llm_judge)",
        help_text="Empty: the project's three-way prompt ({prompt} and {response}).",
    )
    harm_judge = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Harm judge",
        empty_label="— none: every kept prompt goes to the coders",
    )
    harm_judge_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Harm judge's prompt",
        help_text="Empty: the project's harmless / controversial / harmful prompt ({prompt}).",
    )
    embedding_model = forms.ModelChoiceField(
        queryset=None,
        required=False,
        label="Embedding model (deduplication)",
        empty_label="— none: text only",
    )
    near_duplicate_threshold = forms.FloatField(
        min_value=0.01, max_value=1, initial=DEFAULT_NEAR_THRESHOLD,
        label="Near-duplicate text similarity",
    )  # fmt: skip
    embedding_threshold = forms.FloatField(
        min_value=0.01, max_value=1, initial=DEFAULT_EMBEDDING_THRESHOLD,
        label="Embedding similarity",
    )  # fmt: skip
    keep = forms.IntegerField(
        min_value=1, required=False, label="Keep at most",
        help_text="Empty: every candidate a target refused at least once.",
    )  # fmt: skip
    budget = forms.IntegerField(
        min_value=1, initial=1000, label="Budget (generator and target calls)"
    )
    verification_overlap = forms.IntegerField(
        min_value=1, max_value=10, initial=2, label="Coders per prompt"
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        offer_models(self, user, chat=("generator", "targets", "classifier_model", "harm_judge"))

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        judge = d["classifier"] == "llm_judge"
        return {
            "name": d["name"],
            "generator": d["generator"],
            "targets": list(d["targets"]),
            "seed": {field: lines(d[field]) for field in services.SEED_FIELDS},
            "content": {"length": d["length"], "style": d.get("style") or ""},
            "instruction": d["instruction"],
            "per_round": d["per_round"],
            "rounds": d["rounds"],
            "examples_per_round": d["examples_per_round"],
            "samples": d["samples"],
            "refusal": d["refusal"],
            "classifier": d["classifier"],
            "classifier_model": d.get("classifier_model") if judge else None,
            "classifier_prompt": (d.get("classifier_prompt") or None) if judge else None,
            "harm_judge": d.get("harm_judge"),
            "harm_judge_prompt": (d.get("harm_judge_prompt") or None)
            if d.get("harm_judge")
            else None,
            "embedding_model": d.get("embedding_model"),
            "near_duplicate_threshold": d["near_duplicate_threshold"],
            "embedding_threshold": d["embedding_threshold"],
            "keep": d.get("keep"),
            "budget": d["budget"],
            "verification_overlap": d["verification_overlap"],
        }

    def add_service_errors(self, problems: dict[str, str]) -> None:
        """Each problem onto its field (seed.words → words), the others above the form."""
        for key, message in problems.items():
            field = key.split(".", 1)[-1] if key.startswith(("seed.", "content.")) else key
            self.add_error(field if field in self.fields else None, message)


def _list_page(request, *, form=None, status=200) -> HttpResponse:
    user = request.user
    context = job_list_context(
        user,
        jobs=selectors.jobs_for,
        progress=selectors.job_progress,
        form=form or JobForm(user=user),
    )
    return render(request, "modellab/pseudo_harmful/list.html", context, status=status)


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    """GET: your jobs and the form; POST: start a job."""
    if request.method != "POST":
        return _list_page(request)
    form = JobForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            job = services.start_pseudo_harmful_job(owner=request.user, **form.service_kwargs())
        except services.PseudoHarmfulInputError as exc:
            form.add_service_errors(exc.problems)
        except (ValueError, PermissionDenied, QueueUnavailable) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(reverse("modellab:pseudo-harmful-job", args=[job.pk]))
    return _list_page(request, form=form, status=400)


@login_required
def job_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A job: progress, rounds, ranked candidates with refusals per target, duplicates,
    judge labels, the verification task."""
    job = selectors.job_for(request.user, pk)
    per_target = selectors.refusals_per_target(job)
    targets = list(job.targets.order_by("name").values_list("name", flat=True))
    candidates = [
        {
            "c": c,
            "per_target": [(name, per_target.get(c.pk, {}).get(name)) for name in targets],
        }
        for c in selectors.ranked_candidates(job)
    ]
    context = {
        "nav": "lab",
        "job": job,
        "progress": selectors.job_progress(job),
        "rounds": selectors.rounds(job),
        "targets": targets,
        "candidates": candidates,
        "duplicates": list(selectors.duplicates(job)),
    }
    return render(request, "modellab/pseudo_harmful/job.html", context)


@login_required
@require_POST
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a job; candidates, answers and labels stored are kept."""
    job = selectors.job_for(request.user, pk)
    services.cancel_job(job=job, actor=request.user)
    return redirect(reverse("modellab:pseudo-harmful-job", args=[job.pk]))


@login_required
@require_POST
def resume(request: HttpRequest, pk: int) -> HttpResponse:
    """Go on with a cancelled or failed job from where it stopped."""
    job = selectors.job_for(request.user, pk)
    try:
        services.resume_job(job=job, actor=request.user)
    except (ValueError, PermissionDenied, QueueUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect(reverse("modellab:pseudo-harmful-job", args=[job.pk]))
