"""Researcher pages after the coders: finalise a pseudo-harmful set, its quality report, its
exports, measuring false refusal on it, and using it as a study's queries."""

from __future__ import annotations

from csp.decorators import csp
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from config.dispatch import QueueUnavailable
from modellab.classifiers.labels import HARMFULNESS_LABELS
from modellab.false_refusal import selectors as frr_selectors
from modellab.models.material import PseudoHarmfulJob
from modellab.pseudo_harmful import export, outcome, report
from studies import access
from studies.errors import StudyStateError
from studies.models import Study
from studies.services import DraftQueryError


def _report_url(job: PseudoHarmfulJob) -> str:
    return reverse("modellab:pseudo-harmful-report", args=[job.pk])


def _reference(request: HttpRequest):
    """The reference prompt set the researcher picked (?reference=pk), if it is theirs."""
    pk = request.GET.get("reference", "")
    if not pk:
        return None
    try:
        return frr_selectors.prompt_set_for(request.user, pk)
    except Http404:
        return None


def _draft_studies(user):
    return access.studies_for(user, access.Action.EDIT).filter(status=Study.Status.DRAFT)


@login_required
@csp(settings.CSP_CHART_DIRECTIVES)
def report_page(request: HttpRequest, pk: int) -> HttpResponse:
    """Counts per round, category and final label, refusals, lengths, repeats, and each
    target's false-refusal rate on the set beside a reference set's."""
    job = report.job_for(request.user, pk)
    reference = _reference(request)
    data = report.quality_report(job, user=request.user, reference=reference)
    lengths = data["lengths"]
    payload = {"figures": {"ph-lengths": report.length_figure(lengths)}} if lengths["n"] else None
    run = data["false_refusal"]["run"]
    context = {
        "nav": "lab",
        "job": job,
        "report": data,
        "figure_payload": payload,
        "run": run,
        "reference": reference,
        "prompt_sets": [
            s for s in frr_selectors.prompt_sets_for(request.user) if s.pk != job.prompt_set_id
        ],
        "draft_studies": list(_draft_studies(request.user).order_by("slug")),
        "refused_share_text": report.format_share(data["refused_share"]),
        "near_duplicate_text": (
            None if (rate := data["near_duplicate_rate"]["rate"]) is None else f"{100 * rate:.1f}%"
        ),
    }
    return render(request, "modellab/pseudo_harmful/report.html", context)


@login_required
@require_GET
def report_json(request: HttpRequest, pk: int) -> JsonResponse:
    """The same report as JSON (``?reference=<prompt set id>`` for the side-by-side rates)."""
    job = report.job_for(request.user, pk)
    data = report.quality_report(job, user=request.user, reference=_reference(request))
    return JsonResponse(data, json_dumps_params={"ensure_ascii": False})


def _finalise_context(job: PseudoHarmfulJob, *, error=None, posted=None) -> dict:
    posted = posted or {}
    rows = report.verification_rows(job)
    for row in rows:  # a refused form keeps what the researcher chose
        pk = row["candidate"].pk
        row["tie_choice"] = posted.get(f"tie-{pk}", "")
        row["override_choice"] = posted.get(f"override-{pk}", "")
    return {
        "nav": "lab",
        "job": job,
        "rows": rows,
        "labels": HARMFULNESS_LABELS,
        "error": error,
        "posted": posted,
        "name": posted.get("name", job.name),
    }


@login_required
def finalise_page(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: each verified prompt with the coders' labels, ties to decide, overrides; POST:
    finalise (the final labels, the prompt set), then the report."""
    job = report.job_for(request.user, pk)
    if request.method != "POST":
        return render(request, "modellab/pseudo_harmful/finalise.html", _finalise_context(job))
    ties, overrides = {}, {}
    for key, value in request.POST.items():
        if key.startswith("tie-") and value:
            ties[key[4:]] = value
        elif key.startswith("override-") and value:
            overrides[key[9:]] = value
    try:
        outcome.finalise_pseudo_harmful_job(
            job=job,
            actor=request.user,
            tie_decisions=ties,
            overrides=overrides,
            finalise_incomplete=request.POST.get("finalise_incomplete") == "on",
            name=request.POST.get("name", "").strip() or None,
        )
    except outcome.FinaliseError as exc:
        context = _finalise_context(job, error=exc, posted=request.POST)
        return render(request, "modellab/pseudo_harmful/finalise.html", context, status=400)
    messages.success(request, "The set is final: its prompt set is in the false-refusal lab.")
    return redirect(_report_url(job))


def _export(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    job = report.job_for(request.user, pk)
    try:
        rows = export.export_rows(job)
    except export.NotFinalised as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    if kind == "csv":
        body, content_type = export.to_csv(rows), "text/csv; charset=utf-8"
    else:
        body, content_type = export.to_jsonl(rows), "application/x-ndjson; charset=utf-8"
    response = HttpResponse(body.encode("utf-8"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{job.name}.{kind}"'
    return response


@login_required
@require_GET
def export_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """The final set in PHTest's layout (ID, Request, Harmfulness), then provenance."""
    return _export(request, pk, "csv")


@login_required
@require_GET
def export_jsonl(request: HttpRequest, pk: int) -> HttpResponse:
    return _export(request, pk, "jsonl")


@login_required
@require_POST
def measure(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a false-refusal run of the job's targets on its final set."""
    job = report.job_for(request.user, pk)
    try:
        outcome.measure_false_refusal(job=job, actor=request.user)
    except (ValueError, PermissionDenied, QueueUnavailable) as exc:
        messages.error(request, str(exc))
    return redirect(_report_url(job) + "#frr-h")


@login_required
@require_POST
def use_as_queries(request: HttpRequest, pk: int) -> HttpResponse:
    """The final set's prompts as draft queries of one of the researcher's draft studies."""
    job = report.job_for(request.user, pk)
    study = _draft_studies(request.user).filter(slug=request.POST.get("study", "")).first()
    if job.prompt_set is None:
        messages.error(request, "Finalise the job first: it has no final set yet.")
    elif study is None:
        messages.error(request, "Choose one of your draft studies.")
    else:
        try:
            queries = outcome.use_as_study_queries(
                prompt_set=job.prompt_set, study=study, actor=request.user
            )
        except DraftQueryError as exc:
            messages.error(request, "Nothing was imported: " + "; ".join(exc.problems[:10]))
        except (StudyStateError, PermissionDenied) as exc:
            messages.error(request, str(exc))
        else:
            messages.success(
                request,
                f"{len(queries)} draft queries added to {study.slug}; they need scenarios and "
                "responses before the study can launch.",
            )
    return redirect(_report_url(job) + "#queries-h")
