"""Researcher pages of model behaviour: start a classification run, follow it, read and download
the response-type distribution per model."""

from __future__ import annotations

import json

from csp.decorators import csp
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from config.dispatch import QueueUnavailable
from modellab.behaviour import figures, selectors, services
from modellab.classifiers.labels import FIVE_WAY, THREE_WAY
from modellab.models import ClassificationRun
from studies import access
from studies.access import Action
from studies.generation.selectors import chat_models_for
from studies.models import Study
from studies.views.common import study_for_request

RECENT = 20


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


class StartRunForm(forms.Form):
    """Which classifier labels which models' natural responses, with which settings."""

    classifier = forms.ChoiceField(
        choices=[
            ("string_match", "string_match: refusal phrases near the start (three-way only)"),
            ("llm_judge", "llm_judge: a model of the registry judges each response"),
        ],
        widget=forms.RadioSelect,
        initial="string_match",
        label="Classifier",
    )
    scheme = forms.ChoiceField(
        choices=[
            (THREE_WAY, "Three-way: full compliance, full refusal, partial refusal"),
            (FIVE_WAY, "Five-way: the five response types"),
        ],
        widget=forms.RadioSelect,
        initial=THREE_WAY,
        label="Labels",
    )
    models = forms.ModelMultipleChoiceField(
        queryset=None,
        widget=forms.CheckboxSelectMultiple,
        label="Models whose natural responses to classify",
    )
    judge_model = forms.ModelChoiceField(
        queryset=None, required=False, label="Judge model (llm_judge)", empty_label="—"
    )
    judge_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        label="Judging prompt (llm_judge)",
        help_text="Leave empty for the project's default prompt for the chosen labels.",
    )
    refusal_phrases = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Refusal phrases (string_match, one a line)",
        help_text="Leave empty for the default list.",
    )
    partial_phrases = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        label="Partial-refusal phrases (string_match, one a line)",
        help_text="Leave empty for the default list.",
    )
    window = forms.IntegerField(
        min_value=1,
        required=False,
        label="Characters searched from the start (string_match)",
        help_text="Leave empty for the default.",
    )

    def __init__(self, *args, study: Study, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["models"].queryset = services.models_with_natural_responses(study)
        self.fields["judge_model"].queryset = chat_models_for(user).order_by("name")

    def clean(self) -> dict:
        data = super().clean()
        classifier, scheme = data.get("classifier"), data.get("scheme")
        if classifier == "string_match" and scheme == FIVE_WAY:
            self.add_error("scheme", "string_match labels three-way only; use llm_judge for five")
        if classifier == "llm_judge" and not data.get("judge_model"):
            self.add_error("judge_model", "llm_judge needs a judge model")
        return data

    def phrases(self) -> dict | None:
        d = self.cleaned_data
        phrases: dict = {}
        if _lines(d.get("refusal_phrases") or ""):
            phrases["refusal"] = _lines(d["refusal_phrases"])
        if _lines(d.get("partial_phrases") or ""):
            phrases["partial"] = _lines(d["partial_phrases"])
        if d.get("window"):
            phrases["window"] = d["window"]
        return phrases or None

    def service_kwargs(self) -> dict:
        d = self.cleaned_data
        judge = d["classifier"] == "llm_judge"
        return {
            "classifier": d["classifier"],
            "scheme": d["scheme"],
            "models": list(d["models"]),
            "judge_model": d.get("judge_model") if judge else None,
            "judge_prompt": d.get("judge_prompt") if judge else None,
            "phrases": None if judge else self.phrases(),
        }


def _run_context(run: ClassificationRun | None) -> dict:
    if run is None:
        return {}
    labels = selectors.display_labels(run.scheme)
    rows = selectors.distribution(run)
    models = list(dict.fromkeys(r["model"] for r in rows))
    # Through JSON, so every number is plain (plotly.js reads its own typed-array encoding).
    payload = {
        "figures": {
            slug: json.loads(fig.to_json())
            for slug, fig in figures.figures_for(rows, labels).items()
        }
    }
    return {
        "label_names": [figures.label_text(label) for label in labels],
        "model_tables": [
            {
                "model": model,
                "slug": figures.figure_slug(model),
                "rows": figures.table_for(rows, model, labels),
            }
            for model in models
        ],
        "figure_payload": payload if models else None,
    }


def _page(
    request: HttpRequest,
    study: Study,
    run: ClassificationRun | None,
    form: StartRunForm | None,
    status: int = 200,
) -> HttpResponse:
    can_edit = access.can(request.user, Action.EDIT, study)
    runs = list(selectors.runs_for_study(study).prefetch_related("language_models")[:RECENT])
    context = {
        "nav": "lab",
        "study": study,
        "run": run,
        "progress": selectors.run_progress(run) if run else None,
        "runs": [{"run": r, "progress": selectors.run_progress(r)} for r in runs],
        "can_edit": can_edit,
        "form": form if can_edit else None,
        "has_responses": services.models_with_natural_responses(study).exists(),
        **_run_context(run),
    }
    return render(request, "modellab/behaviour/page.html", context, status=status)


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def behaviour_page(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the latest run and the form; POST (editors): start (or resume) a run."""
    if request.method == "POST":
        study = study_for_request(request, slug, Action.EDIT)
        form = StartRunForm(request.POST, study=study, user=request.user)
        if form.is_valid():
            try:
                run = services.start_classification_run(
                    study=study, actor=request.user, **form.service_kwargs()
                )
            except (ValueError, PermissionDenied, QueueUnavailable) as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(
                    reverse("modellab:behaviour-run", kwargs={"slug": slug, "pk": run.pk})
                )
        latest = selectors.runs_for_study(study).first()
        return _page(request, study, latest, form, status=400)
    study = study_for_request(request, slug)
    form = StartRunForm(study=study, user=request.user)
    return _page(request, study, selectors.runs_for_study(study).first(), form)


def _run_or_404(study: Study, pk: int) -> ClassificationRun:
    run = selectors.runs_for_study(study).filter(pk=pk).first()
    if run is None:
        raise Http404("No such classification run.")
    return run


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def behaviour_run(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug)
    run = _run_or_404(study, pk)
    return _page(request, study, run, StartRunForm(study=study, user=request.user))


@login_required
@require_POST
def behaviour_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug, Action.EDIT)
    services.cancel_run(run=_run_or_404(study, pk), actor=request.user)
    return redirect(reverse("modellab:behaviour-run", kwargs={"slug": slug, "pk": pk}))


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def labels_csv(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Every labelled response of the run: model, query, category, framing, label, text."""
    study = study_for_request(request, slug)
    run = _run_or_404(study, pk)
    text = figures.csv_text(selectors.labelled_rows(run), selectors.LABEL_COLUMNS)
    return _csv_response(text, f"{slug}-behaviour-{pk}-labels.csv")


@login_required
def distribution_csv(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """The distribution table: one row per model × category × framing × label."""
    study = study_for_request(request, slug)
    run = _run_or_404(study, pk)
    text = figures.csv_text(selectors.distribution(run), selectors.DISTRIBUTION_COLUMNS)
    return _csv_response(text, f"{slug}-behaviour-{pk}-distribution.csv")
