"""Researcher pages of exports: request one (tables, format, inclusion, package), follow its
progress, download the file through the permission check."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from config.dispatch import QueueUnavailable
from studies.datasets import exports
from studies.datasets.tables import TABLE_DESCRIPTIONS, TABLE_NAMES
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES
from studies.models import ExportJob
from studies.views.common import study_for_request

FORMAT_LABELS = {
    "csv": "CSV (R, pandas, spreadsheets)",
    "jsonl": "JSON Lines (one JSON object per row)",
    "parquet": "Parquet (typed columns: pandas, R's arrow, DuckDB)",
}


class ExportForm(forms.Form):
    tables = forms.MultipleChoiceField(
        choices=[(t, f"{t}: {TABLE_DESCRIPTIONS[t]}") for t in TABLE_NAMES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=list(TABLE_NAMES),
        help_text="A replication package always has every table.",
    )
    export_format = forms.ChoiceField(
        label="Format",
        choices=list(FORMAT_LABELS.items()),
        widget=forms.RadioSelect,
        initial="csv",
    )
    inclusion = forms.ChoiceField(
        label="Participants",
        choices=[(k, f"{k}: {v}") for k, v in INCLUSION_RULES.items()],
        widget=forms.RadioSelect,
        initial=DEFAULT_INCLUSION,
    )
    package = forms.BooleanField(
        label="Replication package (spec, stimuli, every table, codebook, analysis, README, "
        "SHA-256 manifest)",
        required=False,
    )
    include_recruitment_ids = forms.BooleanField(
        label="Include recruitment ids (personal data; recorded in the audit log)",
        required=False,
    )

    def __init__(self, *args, may_include_ids: bool, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Not offered to others (the template leaves it out); a hand-made request that sends
        # it anyway is refused by clean_include_recruitment_ids.
        self.may_include_ids = may_include_ids

    def clean_include_recruitment_ids(self) -> bool:
        wanted = self.cleaned_data.get("include_recruitment_ids", False)
        if wanted and not self.may_include_ids:
            raise forms.ValidationError(
                "Only the study's owners and superusers may export recruitment ids."
            )
        return wanted

    def clean(self):
        data = super().clean()
        if not data.get("package") and not data.get("tables"):
            self.add_error("tables", "Choose at least one table (or a replication package).")
        return data

    def options(self) -> exports.ExportOptions:
        data = self.cleaned_data
        return exports.ExportOptions(
            tables=tuple(data["tables"]) if not data["package"] else TABLE_NAMES,
            export_format=data["export_format"],
            inclusion=data["inclusion"],
            package=data["package"],
            include_recruitment_ids=data["include_recruitment_ids"],
        )


def _job_rows(study, user) -> list[dict]:
    return [
        {
            "job": job,
            "percent": exports.percent(job),
            "open": job.status in exports.OPEN,
            "may_download": job.status == ExportJob.Status.DONE and exports.may_download(user, job),
            "download_url": reverse(
                "studies:export-download", kwargs={"slug": study.slug, "pk": job.pk}
            ),
        }
        for job in exports.jobs_for_study(study)[:50]
    ]


@login_required
def export_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug)
    may_ids = exports.may_include_recruitment_ids(request.user, study)
    status = 200
    if request.method == "POST":
        form = ExportForm(request.POST, may_include_ids=may_ids)
        if form.is_valid():
            try:
                job = exports.request_export(
                    study=study, actor=request.user, options=form.options()
                )
            except QueueUnavailable as exc:
                messages.error(request, str(exc))
            else:
                messages.info(request, f"Export {job.pk} queued: its progress is shown below.")
            return redirect("studies:exports", slug=slug)
        refused = "include_recruitment_ids" in form.errors
        status = 403 if refused else 400
    else:
        form = ExportForm(may_include_ids=may_ids)
    rows = _job_rows(study, request.user)
    context = {
        "nav": "studies",
        "study": study,
        "form": form,
        "may_include_ids": may_ids,
        "rows": rows,
        "any_open": any(row["open"] for row in rows),
        "expiry_hours": settings.EXPORT_EXPIRY_HOURS,
    }
    return render(request, "studies/exports.html", context, status=status)


@login_required
def export_download(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = study_for_request(request, slug)
    job = ExportJob.objects.filter(study=study, pk=pk).select_related("study").first()
    if job is None:
        raise Http404("No such export.")
    handle, filename = exports.open_download(job=job, actor=request.user)
    return FileResponse(
        handle, as_attachment=True, filename=filename, content_type="application/zip"
    )
