"""REST API of exports: request one, follow its progress, download its file."""

from __future__ import annotations

from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from studies.access import Action
from studies.api.common import IsResearcher, errors, study_for
from studies.datasets import exports
from studies.datasets.tables import TABLE_NAMES
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES
from studies.models import ExportJob


class ExportRequestSerializer(serializers.Serializer):
    tables = serializers.ListField(
        child=serializers.ChoiceField(list(TABLE_NAMES)),
        default=list(TABLE_NAMES),
        help_text="Which tables (a replication package always has every table).",
    )
    format = serializers.ChoiceField(list(exports.FORMATS), default="csv")
    inclusion = serializers.ChoiceField(sorted(INCLUSION_RULES), default=DEFAULT_INCLUSION)
    package = serializers.BooleanField(
        default=False,
        help_text="A replication package: spec, stimuli, every table, codebook, analysis "
        "(JSON and HTML), README and SHA-256 manifest.",
    )
    include_recruitment_ids = serializers.BooleanField(
        default=False,
        help_text="Add the raw recruitment ids to the participants table: owners and superusers "
        "only (403 for others); recorded in the audit log.",
    )


class ExportJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    status = serializers.ChoiceField(ExportJob.Status.values)
    tables = serializers.ListField(child=serializers.CharField())
    format = serializers.CharField()
    inclusion = serializers.CharField()
    package = serializers.BooleanField()
    include_recruitment_ids = serializers.BooleanField()
    rows_total = serializers.IntegerField()
    rows_done = serializers.IntegerField()
    percent = serializers.IntegerField()
    size_bytes = serializers.IntegerField(allow_null=True)
    sha256 = serializers.CharField(allow_blank=True, help_text="Of the zip file, once done.")
    error = serializers.CharField(allow_blank=True)
    requested_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    download = serializers.CharField(allow_null=True, help_text="The file's URL, once done.")


def job_payload(job: ExportJob) -> dict:
    download = None
    if job.status == ExportJob.Status.DONE:
        download = f"/api/studies/{job.study.slug}/exports/{job.pk}/download/"
    return {
        "id": job.pk,
        "study": job.study.slug,
        "status": job.status,
        "tables": list(job.tables),
        "format": job.format,
        "inclusion": job.inclusion,
        "package": job.package,
        "include_recruitment_ids": job.include_recruitment_ids,
        "rows_total": job.rows_total,
        "rows_done": job.rows_done,
        "percent": exports.percent(job),
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "error": job.error,
        "requested_by": job.requested_by.get_username() if job.requested_by else None,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "expires_at": job.expires_at,
        "download": download,
    }


def _job(request, slug: str, pk: int) -> ExportJob:
    study = study_for(request, slug, Action.VIEW)
    job = ExportJob.objects.filter(study=study, pk=pk).select_related("study", "requested_by")
    job = job.first()
    if job is None:
        raise Http404("No such export.")
    return job


class ExportListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = ExportJobSerializer

    @extend_schema(responses={200: ExportJobSerializer(many=True), **errors(404)})
    def get(self, request, slug: str):
        """The study's exports, newest first (the latest 100)."""
        study = study_for(request, slug, Action.VIEW)
        return Response([job_payload(job) for job in exports.jobs_for_study(study)[:100]])

    @extend_schema(
        request=ExportRequestSerializer,
        responses={201: ExportJobSerializer, **errors(400, 403, 404)},
        description="Queue an export (audited); follow it at its detail URL.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.VIEW)
        serializer = ExportRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        options = exports.ExportOptions(
            tables=tuple(data["tables"]),
            export_format=data["format"],
            inclusion=data["inclusion"],
            package=data["package"],
            include_recruitment_ids=data["include_recruitment_ids"],
        )
        try:
            job = exports.request_export(study=study, actor=request.user, options=options)
        except exports.ExportRefused as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(job_payload(job), status=status.HTTP_201_CREATED)


class ExportDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = ExportJobSerializer

    @extend_schema(responses={200: ExportJobSerializer, **errors(404)})
    def get(self, request, slug: str, pk: int):
        """One export with its progress (rows done of rows total)."""
        return Response(job_payload(_job(request, slug, pk)))


class ExportDownloadView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses={
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The export's zip file."
            ),
            **errors(403, 404),
        },
        description="The finished export's zip; 404 when not ready or expired, 403 for an "
        "export with recruitment ids unless you own the study. Audited.",
    )
    def get(self, request, slug: str, pk: int):
        job = _job(request, slug, pk)
        handle, filename = exports.open_download(job=job, actor=request.user)
        return FileResponse(
            handle, as_attachment=True, filename=filename, content_type="application/zip"
        )
