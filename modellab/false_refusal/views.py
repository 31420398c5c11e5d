"""Researcher pages of the false-refusal benchmark: import prompt sets, start runs, read rates."""

from __future__ import annotations

from csp.decorators import csp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.dispatch import QueueUnavailable
from modellab.false_refusal import figures, selectors, services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING, PromptSetError
from modellab.models import FalseRefusalRun, PromptSet
from studies.generation.selectors import chat_models_for

RECENT = 20
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class ImportForm(forms.Form):
    """A CSV or JSONL file and which of its columns hold what (PHTest's names by default)."""

    name = forms.SlugField(max_length=100, label="Name of the prompt set", initial="phtest")
    file = forms.FileField(label="CSV or JSONL file", help_text="UTF-8, one prompt a row.")
    prompt_column = forms.CharField(label="Prompt column", initial=PHTEST_MAPPING["prompt"])
    label_column = forms.CharField(
        label="Label column (prompt group)",
        required=False,
        initial=PHTEST_MAPPING["label"],
        help_text="e.g. harmless / controversial; empty: all prompts in one group.",
    )
    category_column = forms.CharField(label="Category column", required=False)
    id_column = forms.CharField(
        label="Id column",
        required=False,
        initial=PHTEST_MAPPING["id"],
        help_text="Empty: prompts are numbered in file order.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
            )
        return upload

    def mapping(self) -> dict[str, str]:
        d = self.cleaned_data
        return {key: d.get(f"{key}_column") or "" for key in PHTEST_MAPPING}


class StartRunForm(forms.Form):
    """Which models answer which prompt set, and which classifier labels the answers."""

    prompt_set = forms.ModelChoiceField(queryset=None, label="Prompt set", empty_label=None)
    models = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Models to test"
    )
    classifier = forms.ChoiceField(
        choices=[
            ("string_match", "string_match: refusal phrases near the start"),
            ("llm_judge", "llm_judge: a model of the registry judges each response"),
        ],
        widget=forms.RadioSelect,
        initial="string_match",
        label="Classifier (three-way labels)",
    )
    judge_model = forms.ModelChoiceField(
        queryset=None, required=False, label="Judge model (llm_judge)", empty_label="—"
    )
    judge_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        label="Judging prompt (llm_judge)",
        help_text="Leave empty for the project's default three-way prompt; it must contain "
        "{prompt} and {response}.",
    )
    limit = forms.IntegerField(
        min_value=1, required=False, label="Only the first N prompts", help_text="Empty: all."
    )
    sample = forms.IntegerField(min_value=1, required=False, label="Or: N prompts drawn at random")
    seed = forms.IntegerField(min_value=0, initial=0, label="Seed of the random draw")

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["prompt_set"].queryset = selectors.prompt_sets_for(user)
        usable = chat_models_for(user).order_by("name")
        self.fields["models"].queryset = usable
        self.fields["judge_model"].queryset = usable

    def clean(self) -> dict:
        data = super().clean()
        if data.get("classifier") == "llm_judge" and not data.get("judge_model"):
            self.add_error("judge_model", "llm_judge needs a judge model")
        if data.get("limit") and data.get("sample"):
            self.add_error("sample", "give either the first N prompts or a random sample")
        return data

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        judge = d["classifier"] == "llm_judge"
        return {
            "prompt_set": d["prompt_set"],
            "models": list(d["models"]),
            "classifier": d["classifier"],
            "judge_model": d.get("judge_model") if judge else None,
            "judge_prompt": (d.get("judge_prompt") or None) if judge else None,
            "limit": d.get("limit"),
            "sample": d.get("sample"),
            "seed": d.get("seed") or 0,
        }


def _page(request, *, import_form=None, start_form=None, status=200) -> HttpResponse:
    user = request.user
    runs = list(selectors.runs_for(user).prefetch_related("language_models")[:RECENT])
    context = {
        "nav": "lab",
        "prompt_sets": list(selectors.prompt_sets_for(user)),
        "runs": [{"run": r, "progress": selectors.run_progress(r)} for r in runs],
        "import_form": import_form or ImportForm(),
        "start_form": start_form or StartRunForm(user=user),
        "has_models": chat_models_for(user).exists(),
    }
    return render(request, "modellab/false_refusal/page.html", context, status=status)


@login_required
def false_refusal_page(request: HttpRequest) -> HttpResponse:
    """GET: prompt sets, runs and both forms; POST: import a set (form=import) or start a run."""
    if request.method != "POST":
        return _page(request)
    if request.POST.get("form") == "import":
        form = ImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                prompt_set = services.import_prompt_set(
                    name=form.cleaned_data["name"],
                    data=upload.read(),
                    filename=upload.name,
                    mapping=form.mapping(),
                    actor=request.user,
                )
            except PromptSetError as exc:
                for problem in exc.problems:
                    form.add_error(None, problem)
            else:
                return redirect(reverse("modellab:false-refusal-set", args=[prompt_set.pk]))
        return _page(request, import_form=form, status=400)
    form = StartRunForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            run = services.start_false_refusal_run(actor=request.user, **form.service_kwargs())
        except (ValueError, PermissionDenied, QueueUnavailable) as exc:
            form.add_error(None, str(exc))
        else:
            return redirect(reverse("modellab:false-refusal-run", args=[run.pk]))
    return _page(request, start_form=form, status=400)


@login_required
def prompt_set_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A prompt set's provenance, its groups and its first prompts."""
    prompt_set: PromptSet = selectors.prompt_set_for(request.user, pk)
    groups = selectors.prompt_groups(prompt_set)
    context = {
        "nav": "lab",
        "prompt_set": prompt_set,
        "groups": groups,
        "prompts": list(prompt_set.prompts.order_by("position")[:50]),
    }
    return render(request, "modellab/false_refusal/prompt_set.html", context)


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def run_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A run: its progress while it runs; per model, both rates per group, a chart, a table."""
    run: FalseRefusalRun = selectors.run_for(request.user, pk)
    progress = selectors.run_progress(run)
    models = selectors.run_rates(run)
    labelled = [m for m in models if any(g["n"] for g in m["groups"])]
    payload = {
        "figures": {figures.figure_slug(m["model"]): figures.model_figure(m) for m in labelled}
    }
    context = {
        "nav": "lab",
        "run": run,
        "progress": progress,
        "models": [{**m, "slug": figures.figure_slug(m["model"])} for m in models],
        "table_rows": figures.table_rows(models),
        "figure_payload": payload if labelled else None,
    }
    return render(request, "modellab/false_refusal/run.html", context)


@login_required
@require_POST
def retry_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Resume a cancelled run, or one that finished with failures: only what is missing."""
    run = selectors.run_for(request.user, pk)
    try:
        services.retry_failed(run=run, actor=request.user)
    except (ValueError, PermissionDenied) as exc:
        messages.error(request, str(exc))
    return redirect(reverse("modellab:false-refusal-run", args=[run.pk]))


@login_required
@require_POST
def cancel_run(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a queued or running run; answers and labels stored are kept."""
    run = selectors.run_for(request.user, pk)
    services.cancel_run(run=run, actor=request.user)
    return redirect(reverse("modellab:false-refusal-run", args=[run.pk]))


@login_required
def responses_csv(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every response of the run with its label (and prompt, group, rationale), as CSV."""
    run = selectors.run_for(request.user, pk)
    response = StreamingHttpResponse(
        selectors.responses_csv(run), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="false-refusal-run-{run.pk}.csv"'
    return response
