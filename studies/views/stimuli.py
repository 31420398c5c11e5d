"""Researcher pages for stimuli: upload with a preview, then confirm; browse the queries."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from studies import access, review, stimuli, stimuli_export
from studies.access import Action
from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES
from studies.errors import StudyStateError
from studies.models import Study
from studies.stimuli_file import StimuliFileError
from studies.views.common import study_for_request

QUERIES_PER_PAGE = 50


class StimuliUploadForm(forms.Form):
    file = forms.FileField(
        label="Stimuli file (.csv or .jsonl)",
        help_text="One row per query: query_id, category, topic, query, benign_scenario, "
        "malicious_scenario and one column per response type.",
    )
    replace = forms.BooleanField(
        required=False,
        label="Replace all existing stimuli",
        help_text="Queries not in the file are removed, with all their texts (generated ones "
        "too). Without this, the file's queries are added or updated and others are kept.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            stimuli.check_upload_size(upload.size)
        except stimuli.UploadError as exc:
            raise forms.ValidationError(str(exc)) from None
        return upload


def _upload_page(
    request: HttpRequest,
    study: Study,
    form: StimuliUploadForm,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    editable_error = ""
    try:
        stimuli.check_stimuli_editable(study)
    except stimuli.UploadError as exc:
        editable_error = str(exc)
    return render(
        request,
        "studies/stimuli/upload.html",
        {
            "study": study,
            "nav": "studies",
            "form": form,
            "error": error,
            "editable_error": editable_error,
            "max_mb": stimuli.max_upload_bytes() / 1024 / 1024,
        },
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest, slug: str) -> HttpResponse:
    """Choose a file; a valid POST shows the preview and stages the file (nothing saved)."""
    study = study_for_request(request, slug, Action.EDIT)
    if request.method == "GET":
        return _upload_page(request, study, StimuliUploadForm())
    form = StimuliUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_page(request, study, form, status=400)
    try:
        stimuli.check_stimuli_editable(study)
    except stimuli.UploadError as exc:
        return _upload_page(request, study, form, error=str(exc), status=400)
    upload_file = form.cleaned_data["file"]
    data = upload_file.read()
    replace = form.cleaned_data["replace"]
    preview = stimuli.preview_stimuli(
        study=study, data=data, filename=upload_file.name, replace=replace
    )
    token = ""
    if preview.ok:
        token = stimuli.stage_upload(
            study=study, user=request.user, data=data, filename=upload_file.name, replace=replace
        )
    return render(
        request,
        "studies/stimuli/preview.html",
        {
            "study": study,
            "nav": "studies",
            "preview": preview,
            "token": token,
            "response_types": [(t, RESPONSE_TYPE_LABELS[t]) for t in RESPONSE_TYPES],
            "form": StimuliUploadForm(),
            "max_mb": stimuli.max_upload_bytes() / 1024 / 1024,
        },
        status=200 if preview.ok else 400,
    )


@login_required
@require_POST
def confirm(request: HttpRequest, slug: str) -> HttpResponse:
    """Import the previewed file; any refusal leaves the study as it was."""
    study = study_for_request(request, slug, Action.EDIT)
    token = request.POST.get("token", "")
    try:
        staged, summary = stimuli.confirm_upload(study=study, user=request.user, token=token)
    except (stimuli.UploadError, StudyStateError, StimuliFileError) as exc:
        return _upload_page(request, study, StimuliUploadForm(), error=str(exc), status=400)
    messages.success(
        request,
        f"Imported {staged.filename}: {summary.created} new, {summary.updated} updated, "
        f"{summary.removed} removed.",
    )
    return redirect("studies:queries", slug=study.slug)


@login_required
def query_list(request: HttpRequest, slug: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    search = request.GET.get("q", "")
    category = request.GET.get("category", "")
    queries = stimuli.query_table(study, search=search, category=category)
    page = Paginator(queries, QUERIES_PER_PAGE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "studies/stimuli/query_list.html",
        {
            "study": study,
            "nav": "studies",
            "page": page,
            "rows": stimuli.query_rows(list(page.object_list)),
            "search": search,
            "category": category,
            "categories": stimuli.query_categories(study),
            "response_types": [(t, RESPONSE_TYPE_LABELS[t]) for t in RESPONSE_TYPES],
            "querystring": params.urlencode(),
            "can_edit": access.can(request.user, Action.EDIT, study)
            and review.texts_editable(study),
        },
    )


@login_required
def query_detail(request: HttpRequest, slug: str, query_id: str) -> HttpResponse:
    study = study_for_request(request, slug, Action.VIEW)
    query = study.queries.prefetch_related("scenarios").filter(query_id=query_id).first()
    if query is None:
        raise Http404("No such query in this study.")
    return render(
        request,
        "studies/stimuli/query_detail.html",
        {
            "study": study,
            "nav": "studies",
            "query": query,
            "scenarios": sorted(query.scenarios.all(), key=lambda s: s.motivation),
            "columns": review.side_by_side(query),
            "editable": review.texts_editable(study),
            "can_review": access.can(request.user, Action.EDIT, study)
            and review.texts_editable(study),
            "next": request.get_full_path(),
        },
    )


STIMULI_CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/jsonl; charset=utf-8",
}


@login_required
def download(request: HttpRequest, slug: str) -> HttpResponse:
    """The study's stimuli as the import reads them (approved texts only), streamed."""
    study = study_for_request(request, slug, Action.VIEW)
    try:
        export_format = stimuli_export.check_format(request.GET.get("format") or "csv")
    except stimuli_export.ExportFormatError as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    response = StreamingHttpResponse(
        stimuli_export.stream_stimuli(study, export_format),
        content_type=STIMULI_CONTENT_TYPES[export_format],
    )
    filename = stimuli_export.export_filename(study, export_format)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
