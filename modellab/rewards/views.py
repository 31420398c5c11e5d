"""Researcher page of reward scoring: start a run, follow it, read scores per response type and
their agreement with a chosen measure, download every score."""

from __future__ import annotations

import json

import plotly.graph_objects as go
from csp.decorators import csp
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from modellab.models import RewardRun
from modellab.rewards import scorers, selectors, services
from studies import access
from studies.access import Action
from studies.analysis.figures import response_type_label
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES, RESPONSE_TYPES
from studies.generation.selectors import chat_models_for
from studies.models import LanguageModel, Study
from studies.views.common import study_for_request


class RewardRunForm(forms.Form):
    """Which registry model scores, and how (a reward model, or a model asked as a judge)."""

    model = forms.ModelChoiceField(
        queryset=LanguageModel.objects.none(), to_field_name="name", label="Model"
    )
    scorer = forms.ChoiceField(
        choices=RewardRun.Scorer.choices,
        widget=forms.RadioSelect,
        initial=RewardRun.Scorer.REWARD_MODEL,
        label="Scorer",
    )
    judge_prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 12}),
        max_length=services.MAX_JUDGE_PROMPT_CHARS,
        initial=scorers.DEFAULT_JUDGE_PROMPT,
        label="Judge prompt (LLM judge only)",
        help_text="The judge's instructions; it must answer "
        '{"score": n, "rationale": "…"} with n a whole number from -3 to 3.',
    )

    def __init__(self, *args, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].queryset = chat_models_for(user).order_by("name")

    def clean(self) -> dict:
        data = super().clean()
        if data.get("scorer") == RewardRun.Scorer.REWARD_MODEL:
            # The textarea starts filled with the default prompt; it means nothing here.
            data["judge_prompt"] = None
        return data


def _label(motivation: str) -> str:
    return motivation or "query only"


def _figures(by_type: list[dict], boxes: dict[str, dict[str, list[float]]], title: str) -> dict:
    labels = [response_type_label(r["response_type"]) for r in by_type]
    figures = {}
    for key, field, sd_field, axis in (
        ("raw", "mean", "sd", "Mean score"),
        ("z", "z_mean", "z_sd", "Mean z-score (within this scorer)"),
    ):
        bar = go.Figure(
            go.Bar(
                x=labels,
                y=[r[field] for r in by_type],
                error_y={"type": "data", "array": [r[sd_field] or 0 for r in by_type]},
                hovertemplate="%{x}: %{y:.3f}<extra></extra>",
            )
        )
        bar.update_layout(
            title=f"{title}: {axis.lower()} by response type (± SD)", yaxis_title=axis
        )
        figures[f"bar-{key}"] = json.loads(bar.to_json())
    box = go.Figure(
        [
            go.Box(y=values["raw"], name=response_type_label(response_type), boxpoints="outliers")
            for response_type, values in boxes.items()
        ]
    )
    box.update_layout(title=f"{title}: scores by response type", showlegend=False)
    figures["box-raw"] = json.loads(box.to_json())
    return figures


def _comparison_figure(rows: list[dict]) -> dict:
    """Mean z per response type, one bar group per run (the scorers side by side)."""
    labels = [response_type_label(t) for t in RESPONSE_TYPES]
    figure = go.Figure(
        [
            go.Bar(
                name=f"{r['run'].model.name} #{r['run'].pk}",
                x=labels,
                y=r["z_means"],
                hovertemplate="%{x}: %{y:.3f}<extra>%{fullData.name}</extra>",
            )
            for r in rows
        ]
    )
    figure.update_layout(
        title="Scorers side by side: mean z-score by response type",
        yaxis_title="Mean z-score (within each run)",
        barmode="group",
    )
    return json.loads(figure.to_json())


def _agreement_rows(result: dict) -> list[dict]:
    rows = [{"label": "All stimuli", **result["overall"]}]
    rows += [{"label": _label(g["motivation"]), **g} for g in result["by_motivation"]]
    return rows


def _page(request: HttpRequest, study: Study, form: RewardRunForm | None, status: int = 200):
    runs = list(selectors.runs_for(study))
    run = None
    if runs:
        wanted = request.GET.get("run")
        run = next((r for r in runs if str(r.pk) == wanted), None) if wanted else runs[0]
        if wanted and run is None:
            raise Http404("No such reward run.")
    measures = selectors.measures(study)
    measure = request.GET.get("measure") or (measures[0].key if measures else None)
    if measure is not None and measure not in {q.key for q in measures}:
        raise Http404("No such measure.")
    inclusion = request.GET.get("inclusion") or DEFAULT_INCLUSION
    if inclusion not in INCLUSION_RULES:
        raise Http404("No such inclusion rule.")
    compared = selectors.comparison(study)
    context = {
        "nav": "studies",
        "comparison": compared,
        "response_types": RESPONSE_TYPES,
        "study": study,
        "runs": [(r, selectors.run_progress(r)) for r in runs],
        "run": run,
        "form": form,
        "measures": measures,
        "measure": measure,
        "inclusion": inclusion,
        "inclusion_rules": INCLUSION_RULES,
        "can_edit": access.can(request.user, Action.EDIT, study),
    }
    figures = {}
    if len(compared) > 1:
        figures["compare-z"] = _comparison_figure(compared)
    if run is not None:
        by_type = selectors.results_by_type(run)
        context["by_type"] = by_type
        if by_type:
            title = f"{run.model.name} ({run.get_scorer_display()})"
            figures.update(_figures(by_type, selectors.box_values(run), title))
        if measure is not None:
            result = selectors.agreement_with(run, measure, inclusion)
            context["agreement"] = result
            context["agreement_rows"] = _agreement_rows(result)
    if figures:
        context["figure_payload"] = {"figures": figures}
    return render(request, "modellab/rewards/rewards.html", context, status=status)


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def rewards_page(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the runs, the chosen run's results; POST (editors): start or resume a run."""
    if request.method == "POST":
        study = study_for_request(request, slug, Action.EDIT)
        form = RewardRunForm(request.POST, user=request.user)
        if form.is_valid():
            try:
                run = services.start_reward_run(
                    study=study,
                    model=form.cleaned_data["model"],
                    scorer=form.cleaned_data["scorer"],
                    judge_prompt=form.cleaned_data["judge_prompt"],
                    actor=request.user,
                )
            except (ValueError, PermissionDenied) as exc:
                form.add_error(None, str(exc))
            else:
                url = reverse("modellab:rewards", kwargs={"slug": slug})
                return redirect(f"{url}?run={run.pk}")
        return _page(request, study, form, status=400)
    study = study_for_request(request, slug)
    can_edit = access.can(request.user, Action.EDIT, study)
    return _page(request, study, RewardRunForm(user=request.user) if can_edit else None)


@login_required
@require_POST
def rewards_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Stop a queued or running run (editors and owners); scores already stored are kept."""
    study = study_for_request(request, slug, Action.EDIT)
    run = study.reward_runs.filter(pk=pk).first()
    if run is None:
        raise Http404("No such reward run.")
    services.cancel_run(run=run, actor=request.user)
    url = reverse("modellab:rewards", kwargs={"slug": slug})
    return redirect(f"{url}?run={run.pk}")


@login_required
def rewards_csv(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Every score of a run (any status, with raw answers and errors) as CSV."""
    study = study_for_request(request, slug)
    run = study.reward_runs.select_related("model").filter(pk=pk).first()
    if run is None:
        raise Http404("No such reward run.")
    response = HttpResponse(selectors.scores_csv(run), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slug}-rewards-{pk}.csv"'
    return response


@login_required
def agreement_csv(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    """Per stimulus: the run's score and the mean rating of ``?measure=`` (default: the first
    rated question) over ``&inclusion=`` participants, the pairs behind the agreement table."""
    study = study_for_request(request, slug)
    run = study.reward_runs.select_related("study").filter(pk=pk).first()
    if run is None:
        raise Http404("No such reward run.")
    keys = [q.key for q in selectors.measures(study)]
    # The page's default: the study's first rated question.
    measure = request.GET.get("measure") or (keys[0] if keys else "")
    inclusion = request.GET.get("inclusion") or DEFAULT_INCLUSION
    if measure not in keys or inclusion not in INCLUSION_RULES:
        raise Http404("No such measure or inclusion rule.")
    body = selectors.stimulus_csv(run, measure, inclusion)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    name = f"{slug}-rewards-{pk}-{measure}-{inclusion}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
