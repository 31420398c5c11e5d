"""Researcher pages of power planning: the form, a run's progress, its table and curve."""

from __future__ import annotations

import json

from csp.decorators import csp
from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from studies import access, power_jobs, selectors
from studies.access import Action
from studies.analysis.figures import response_type_label
from studies.analysis.power import PowerInputError
from studies.analysis.power.output import power_csv, power_curve, term_label
from studies.analysis.power.simulation import ADJUSTMENTS, MAX_SIMULATIONS, parse_participants
from studies.design import required_response_types
from studies.domain import RESPONSE_TYPES
from studies.models import PowerAnalysis, Study
from studies.spec import design_from_spec
from studies.views.common import study_for_request

RECENT = 10


def _design_types(study: Study) -> tuple[list[str], str, bool]:
    """The design's response types other than the reference, the reference, and whether
    motivation varies (then it has an effect and interactions to assume)."""
    spec = selectors.study_spec(study)
    design = design_from_spec(spec)
    reference = spec.analysis.reference_level
    try:
        shown = required_response_types(design)
    except ValueError:
        shown = set()
    types = [t for t in RESPONSE_TYPES if t in shown and t != reference]
    motivation = any(f.name == "motivation" and len(f.levels) > 1 for f in design.factors)
    return types, reference, motivation


class PowerForm(forms.Form):
    """Where the assumptions come from, the assumed values, and how much to simulate."""

    measure = forms.ChoiceField(label="Measure (question)")
    source = forms.ChoiceField(
        choices=[("typed", "Values typed in below"), ("pilot", "A pilot study's analysis")],
        widget=forms.RadioSelect,
        initial="typed",
        label="Effect sizes and variance components from",
    )
    pilot = forms.ChoiceField(required=False, label="Pilot study")
    intercept = forms.FloatField(label="Mean rating of the reference type (benign)")
    sd_participant = forms.FloatField(min_value=0, label="SD between participants")
    sd_query = forms.FloatField(min_value=0, label="SD between queries")
    sd_residual = forms.FloatField(min_value=0, label="Residual SD")
    round = forms.BooleanField(
        required=False, initial=True, label="Round and clip simulated ratings to the scale"
    )
    participants = forms.CharField(
        initial="80,160,...,960",
        label="Participant counts",
        help_text="first, second, ..., last (a step) or a list: 100,200,400",
    )
    simulations = forms.IntegerField(
        min_value=10, max_value=MAX_SIMULATIONS, initial=500, label="Simulations per count"
    )
    alpha = forms.FloatField(initial=0.05, label="α (two-sided)")
    seed = forms.IntegerField(min_value=0, max_value=2**32 - 1, initial=0, label="Seed")
    adjust = forms.ChoiceField(
        choices=[
            (a, "none" if a == "none" else "Holm, over the response-type terms")
            for a in ADJUSTMENTS
        ],
        initial="none",
        label="Multiplicity adjustment",
    )
    queries = forms.IntegerField(
        min_value=1, required=False, label="Number of queries the study will have"
    )

    def __init__(self, *args, study: Study, user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.types, self.reference, self.motivation = _design_types(study)
        spec = selectors.study_spec(study)
        self.fields["measure"].choices = [(q.key, q.key) for q in spec.questions]
        self.fields["pilot"].choices = [("", "—")] + [
            (s.slug, f"{s.title} ({s.slug})") for s in power_jobs.pilot_studies(user)
        ]
        if study.queries.exists():
            del self.fields["queries"]
        example = power_jobs.example_assumptions()
        effects = example.get("response_type") or {}
        for t in self.types:
            self.fields[f"effect_{t}"] = forms.FloatField(
                label=f"{response_type_label(t)} − {response_type_label(self.reference)}",
                initial=effects.get(t, 0.0),
            )
        if self.motivation:
            self.fields["motivation_malicious"] = forms.FloatField(
                label="Malicious − benign (reference type)",
                initial=(example.get("motivation") or {}).get("malicious", 0.0),
            )
            for t in self.types:
                self.fields[f"interaction_{t}"] = forms.FloatField(
                    label=f"Interaction {response_type_label(t)} × malicious", initial=0.0
                )
        for name in ("intercept", "sd_participant", "sd_query", "sd_residual"):
            if name in example:
                self.fields[name].initial = example[name]
        if example.get("measure") in dict(self.fields["measure"].choices):
            self.fields["measure"].initial = example["measure"]
        # Typed values are only required when they are used.
        self.typed_fields = ["intercept", "sd_participant", "sd_query", "sd_residual"]
        self.typed_fields += [
            n for n in self.fields if n.startswith(("effect_", "motivation_", "interaction_"))
        ]
        if self.data.get("source") == "pilot":
            for name in self.typed_fields:
                self.fields[name].required = False

    def clean_participants(self) -> str:
        text = self.cleaned_data["participants"]
        try:
            parse_participants(text)
        except PowerInputError as exc:
            raise forms.ValidationError(exc.problems["participants"]) from None
        return text

    def sections(self) -> list[tuple[str, list]]:
        """The form's fieldsets: what to plan for, the assumed values, the simulation."""
        assumed = ["intercept", *[n for n in self.typed_fields if n[:3] in ("eff", "mot", "int")]]
        assumed += ["sd_participant", "sd_query", "sd_residual", "round"]
        simulation = ["participants", "simulations", "alpha", "adjust", "seed"]
        simulation += ["queries"] * ("queries" in self.fields)
        return [
            ("What to plan for", [self[n] for n in ("measure", "source", "pilot")]),
            ("Assumed values (used when typed in)", [self[n] for n in assumed]),
            ("Simulation", [self[n] for n in simulation]),
        ]

    def params(self) -> dict:
        """The service's parameters from the cleaned data."""
        d = self.cleaned_data
        params = {
            "source": d["source"],
            "measure": d["measure"],
            "pilot": d.get("pilot") or None,
            "round": d["round"],
            "participants": d["participants"],
            "simulations": d["simulations"],
            "alpha": d["alpha"],
            "seed": d["seed"],
            "adjust": d["adjust"],
        }
        if d.get("queries") is not None:
            params["queries"] = d["queries"]
        if d["source"] == "typed":
            params["assumptions"] = {
                "reference_level": self.reference,
                "intercept": d["intercept"],
                "response_type": {t: d[f"effect_{t}"] for t in self.types},
                "motivation": {"malicious": d["motivation_malicious"]} if self.motivation else {},
                "interaction": {t: {"malicious": d[f"interaction_{t}"]} for t in self.types}
                if self.motivation
                else {},
                "sd_participant": d["sd_participant"],
                "sd_query": d["sd_query"],
                "sd_residual": d["sd_residual"],
            }
        return params

    def add_service_errors(self, exc: PowerInputError) -> None:
        """Put each of the service's problems next to its field (or above the form)."""
        for key, message in exc.problems.items():
            field = key
            if key.startswith("response_type."):
                field = "effect_" + key.split(".", 1)[1]
            elif key.startswith("motivation."):
                field = "motivation_" + key.split(".", 1)[1]
            elif key.startswith("interaction."):
                field = "interaction_" + key.split(".")[1]
            self.add_error(field if field in self.fields else None, message)


def _result_context(power: PowerAnalysis | None) -> dict:
    if power is None or power.status != PowerAnalysis.Status.DONE:
        return {}
    result = power.result
    rows = result.get("rows") or []
    terms = list(dict.fromkeys(r["term"] for r in rows))
    counts = list(dict.fromkeys(r["participants"] for r in rows))
    by = {(r["participants"], r["term"]): r for r in rows}
    header = [term_label(next(r for r in rows if r["term"] == t)) for t in terms]
    # Through JSON, so every number is plain (plotly.js reads its own typed-array encoding).
    figure = json.loads(power_curve(result).to_json())
    return {
        "table_header": header,
        "table_rows": [{"participants": n, "cells": [by[(n, t)] for t in terms]} for n in counts],
        "figure_payload": {"figures": {"power": figure}},
        "result": result,
    }


def _page(request: HttpRequest, study: Study, power: PowerAnalysis | None, form, status=200):
    recent = list(study.power_analyses.select_related("requested_by")[:RECENT])
    can_edit = access.can(request.user, Action.EDIT, study)
    context = {
        "nav": "studies",
        "study": study,
        "power": power,
        "progress": power_jobs.progress_of(power) if power else None,
        "recent": recent,
        "can_edit": can_edit,
        "form": form if can_edit else None,
        **_result_context(power),
    }
    return render(request, "studies/power.html", context, status=status)


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def power_page(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the latest run and the form; POST (editors): queue a run."""
    if request.method == "POST":
        study = study_for_request(request, slug, Action.EDIT)
        form = PowerForm(request.POST, study=study, user=request.user)
        if form.is_valid():
            try:
                power = power_jobs.request_power_analysis(
                    study=study, params=form.params(), actor=request.user
                )
            except PowerInputError as exc:
                form.add_service_errors(exc)
            else:
                return redirect(reverse("studies:power-run", kwargs={"slug": slug, "pk": power.pk}))
        return _page(request, study, study.power_analyses.first(), form, status=400)
    study = study_for_request(request, slug)
    form = PowerForm(study=study, user=request.user)
    return _page(request, study, study.power_analyses.first(), form)


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def power_run(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug)
    power = study.power_analyses.filter(pk=pk).first()
    if power is None:
        raise Http404("No such power analysis.")
    return _page(request, study, power, PowerForm(study=study, user=request.user))


@login_required
def power_csv_download(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug)
    power = study.power_analyses.filter(pk=pk, status=PowerAnalysis.Status.DONE).first()
    if power is None:
        raise Http404("No finished power analysis with that number.")
    response = HttpResponse(power_csv(power.result), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{slug}-power-{pk}.csv"'
    return response
