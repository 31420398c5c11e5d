"""Researcher results pages: the stored analysis, rendered instantly, and its downloads."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from annotation.selectors import quality_numbers
from studies import analysis_jobs
from studies.access import Action
from studies.datasets import exports
from studies.datasets.codebook import build_codebook, codebook_json, codebook_markdown
from studies.domain import DEFAULT_INCLUSION
from studies.exports import INCLUSION_CHOICES, stream_block_answers_csv, stream_ratings_csv
from studies.views.common import study_for_request


def _inclusion(value: str | None) -> str:
    if value in (None, ""):
        return DEFAULT_INCLUSION
    if value not in INCLUSION_CHOICES:
        raise Http404("Unknown inclusion rule.")
    return value


def _stored_report(study, include: str):
    result = analysis_jobs.latest_result(study, include)
    if result is None:
        raise Http404("No computed results yet.")
    return result


@login_required
def results(request: HttpRequest, slug: str) -> HttpResponse:
    from studies.analysis import claims
    from studies.analysis.html_report import REPORTING_RULE

    study = study_for_request(request, slug)
    include = _inclusion(request.GET.get("include"))
    result = analysis_jobs.latest_result(study, include)
    pending = study.analysis_results.filter(
        inclusion=include, status__in=analysis_jobs.OPEN
    ).exists()
    failed = study.analysis_results.filter(inclusion=include).order_by("-requested_at").first()
    context = {
        "study": study,
        "result": result,
        "include": include,
        "inclusion_options": list(INCLUSION_CHOICES),
        "pending": pending,
        "last_failure": failed if failed is not None and failed.status == "failed" else None,
        "freshness": analysis_jobs.freshness(study, result),
        "recompute_url": reverse("studies:recompute", kwargs={"slug": slug}),
        "download_base": f"/studies/{slug}/results/{include}/",
        "figures": {},
        "tables": {},
        "reporting_rule": REPORTING_RULE,
        "min_participants": claims.MIN_PARTICIPANTS,
        # How many completed participants "included" leaves out (quality flags, decisions).
        "exclusions": quality_numbers(study),
        "participants_url": reverse("studies:participants", kwargs={"slug": slug}),
    }
    context["is_stale"] = context["freshness"]["completed_since"] > 0 or result is None
    if result is not None:
        # Built by the worker when it computed the result, not on every view.
        parts = analysis_jobs.page_parts(result)
        context.update(
            figures=parts["figures"],
            # Drawn by static/js/results.js, one after another, once plotly.js (deferred) ran.
            figures_payload=[
                {k: spec[k] for k in ("id", "data", "layout", "config")}
                for spec in parts["figures"].values()
            ],
            tables=parts["tables"],
            headlines=parts["headlines"],
            gap_sentences=parts["gap_sentences"],
            warnings=parts["warnings"],
            not_computed=parts["not_computed"],
        )
    return render(request, "studies/results.html", context)


@login_required
@require_POST
def recompute(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug)
    include = _inclusion(request.POST.get("include"))
    analysis_jobs.request_analysis(study=study, inclusion=include, actor=request.user)
    messages.info(request, "Recomputing: the page shows the new results when they are ready.")
    return redirect(f"{reverse('studies:results', kwargs={'slug': slug})}?include={include}")


@login_required
def download_table(request: HttpRequest, slug: str, include: str, name: str) -> HttpResponse:
    from studies.analysis.tables import report_tables, table_csv

    study = study_for_request(request, slug)
    tables = report_tables(_stored_report(study, _inclusion(include)).report)
    if name not in tables:
        raise Http404("No such table.")
    return _attachment(table_csv(tables[name]), f"{slug}-{include}-{name}.csv", "text/csv")


@login_required
def download_figure(request: HttpRequest, slug: str, include: str, name: str) -> HttpResponse:
    from studies.analysis.figures import figure_html_document, figures_for

    study = study_for_request(request, slug)
    figures = figures_for(_stored_report(study, _inclusion(include)).report)
    if name not in figures:
        raise Http404("No such figure.")
    html = figure_html_document(figures[name], f"{study.title}: {name}")
    return _attachment(html, f"{slug}-{include}-{name}.html", "text/html")


@login_required
def download_report(request: HttpRequest, slug: str, include: str) -> HttpResponse:
    from studies.analysis.html_report import render_html_report

    study = study_for_request(request, slug)
    html = render_html_report(_stored_report(study, _inclusion(include)).report, study.title)
    return _attachment(html, f"{slug}-{include}-report.html", "text/html")


@login_required
def download_ratings(request: HttpRequest, slug: str, include: str) -> HttpResponse:
    study = study_for_request(request, slug)
    exports.record_streamed_export(
        study=study, actor=request.user, table="ratings", inclusion=_inclusion(include)
    )
    response = StreamingHttpResponse(
        stream_ratings_csv(study, include=_inclusion(include)), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{slug}-{include}-ratings.csv"'
    return response


@login_required
def download_block_answers(request: HttpRequest, slug: str, include: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    exports.record_streamed_export(
        study=study, actor=request.user, table="block_answers", inclusion=_inclusion(include)
    )
    response = StreamingHttpResponse(
        stream_block_answers_csv(study, include=_inclusion(include)), content_type="text/csv"
    )
    filename = f"{slug}-{include}-block-answers.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
def download_codebook_md(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    body = codebook_markdown(build_codebook(study))
    return _attachment(body, f"{slug}-codebook.md", "text/markdown")


@login_required
def download_codebook_json(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    body = codebook_json(build_codebook(study))
    return _attachment(body, f"{slug}-codebook.json", "application/json")


def _attachment(body: str, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(body, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
