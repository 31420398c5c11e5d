"""REST API of studies: list, create and change them from a spec as JSON, duplicate them,
upload their stimuli, browse their queries and read their audit log."""

from __future__ import annotations

import json
import re

import django_filters
from django.db.models import Q
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import access, selectors, services
from studies import stimuli as stimuli_service
from studies.access import Action
from studies.api.common import (
    Conflict,
    IsResearcher,
    errors,
    list_schema,
    problems_error,
    service_errors,
    study_for,
)
from studies.builder.services import SlugTaken, duplicate_study
from studies.models import AuditEvent, Query, Study
from studies.spec import SpecError, load_spec, load_spec_data, spec_dict

# --- Studies ------------------------------------------------------------------------------


class StudySerializer(serializers.ModelSerializer):
    role = serializers.SerializerMethodField(help_text="Your role: owner, editor or viewer.")
    duplicated_from = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = Study
        fields = [
            "slug",
            "title",
            "description",
            "status",
            "target_participants",
            "items_per_participant",
            "time_limit_minutes",
            "pilot_slots",
            "duplicated_from",
            "created_at",
            "updated_at",
            "launched_at",
            "role",
        ]
        read_only_fields = fields

    def get_role(self, study: Study) -> str | None:
        return access.role_in(self.context["request"].user, study)


class StudyDetailSerializer(StudySerializer):
    spec = serializers.SerializerMethodField(
        help_text="The whole design, in the spec format that import_study reads."
    )

    class Meta(StudySerializer.Meta):
        fields = [*StudySerializer.Meta.fields, "spec"]
        read_only_fields = fields

    def get_spec(self, study: Study) -> dict:
        return spec_dict(selectors.study_spec(study))


class SpecText(str):
    """A spec sent as YAML text: validated by load_spec, so problems carry line numbers."""


class YAMLSpecParser(BaseParser):
    """A spec file's YAML as the request body (``--data-binary @study.yaml``)."""

    media_type = "application/yaml"

    def parse(self, stream, media_type=None, parser_context=None) -> SpecText:
        try:
            return SpecText(stream.read().decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise ParseError("the spec must be UTF-8 text") from exc


class XYAMLSpecParser(YAMLSpecParser):
    media_type = "application/x-yaml"


class TextYAMLSpecParser(YAMLSpecParser):
    media_type = "text/yaml"


SPEC_PARSERS = [JSONParser, YAMLSpecParser, XYAMLSpecParser, TextYAMLSpecParser]
SPEC_REQUEST = {
    "application/json": OpenApiTypes.OBJECT,
    "application/yaml": OpenApiTypes.STR,
}


def _spec_problems(exc: SpecError) -> ValidationError:
    return problems_error(
        f"the spec has {len(exc.problems)} problem(s)",
        [{"path": p.path, "line": p.line, "message": p.message} for p in exc.problems],
    )


def _spec_from_request(data: object, *, slug: str | None = None):
    """Validate a spec (JSON object or YAML text) exactly as a spec file is validated; the
    400 answer lists every problem with its path (and line, for YAML)."""
    if isinstance(data, SpecText):
        try:
            spec = load_spec(data, source="<request>")
        except SpecError as exc:
            raise _spec_problems(exc) from exc
        return _check_slug(spec, slug)
    if not isinstance(data, dict):
        raise problems_error(
            "the body must be a study spec as a JSON object",
            [{"path": "", "message": "expected a JSON object"}],
        )
    data = dict(data)
    # A spec file's stimuli line names a file next to it; over the API stimuli are uploaded.
    data.pop("stimuli", None)
    if slug is not None:
        data.setdefault("slug", slug)
    try:
        spec = load_spec_data(data, source="<request>")
    except SpecError as exc:
        raise _spec_problems(exc) from exc
    return _check_slug(spec, slug)


def _check_slug(spec, slug: str | None):
    if slug is not None and spec.slug != slug:
        raise problems_error(
            "the spec's slug differs from the study's",
            [{"path": "slug", "message": f"must be '{slug}' (duplicate the study to rename it)"}],
        )
    return spec


@extend_schema_view(**list_schema(StudySerializer))
class StudyListView(generics.ListAPIView):
    """The studies you are a member of (all of them for superusers)."""

    permission_classes = [IsResearcher]
    parser_classes = SPEC_PARSERS
    serializer_class = StudySerializer
    filterset_fields = ["status"]

    def get_queryset(self):
        return access.studies_for(self.request.user, Action.VIEW).order_by("-created_at")

    @extend_schema(
        request=SPEC_REQUEST,
        responses={201: StudyDetailSerializer, **errors(400)},
        description="Create a draft study from a spec: a JSON object, or a spec file's YAML "
        "(Content-Type: application/yaml; its stimuli line is ignored: upload stimuli "
        "separately). You become its owner. Every problem comes back with its path.",
    )
    def post(self, request):
        spec = _spec_from_request(request.data)
        if Study.objects.filter(slug=spec.slug).exists():
            raise problems_error(
                "a study with this slug exists already",
                [{"path": "slug", "message": f"'{spec.slug}' is taken; choose another slug"}],
            )
        with service_errors():
            study = services.import_study(spec=spec, actor=request.user)
        return Response(
            StudyDetailSerializer(study, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class StudyDetailView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = SPEC_PARSERS
    serializer_class = StudyDetailSerializer

    @extend_schema(responses={200: StudyDetailSerializer, **errors(404)})
    def get(self, request, slug: str):
        study = study_for(request, slug, Action.VIEW)
        return Response(StudyDetailSerializer(study, context={"request": request}).data)

    @extend_schema(
        request=SPEC_REQUEST,
        responses={200: StudyDetailSerializer, **errors(400, 403, 404, 409)},
        description="Replace the design of a draft (or in-review) study with this spec.",
    )
    def put(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        spec = _spec_from_request(request.data, slug=study.slug)
        with service_errors():
            study = services.import_study(spec=spec, actor=request.user)
        return Response(StudyDetailSerializer(study, context={"request": request}).data)


class DuplicateSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=80, help_text="The new study's slug.")
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)


class StudyDuplicateView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = DuplicateSerializer

    @extend_schema(
        request=DuplicateSerializer,
        responses={201: StudyDetailSerializer, **errors(400, 404)},
        description="A new draft with this study's design and stimuli; you own it.",
    )
    def post(self, request, slug: str):
        source = study_for(request, slug, Action.VIEW)
        serializer = DuplicateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            study = duplicate_study(
                study=source,
                slug=serializer.validated_data["slug"],
                title=serializer.validated_data.get("title") or None,
                actor=request.user,
            )
        except SlugTaken as exc:
            raise ValidationError({"slug": [str(exc)]}) from exc
        except SpecError as exc:
            raise _spec_problems(exc) from exc
        return Response(
            StudyDetailSerializer(study, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


# --- Stimuli ------------------------------------------------------------------------------


class StimulusRowSerializer(serializers.Serializer):
    line = serializers.IntegerField()
    query_id = serializers.CharField()
    query = serializers.CharField()
    category = serializers.CharField()
    topic = serializers.CharField(allow_blank=True)
    benign_scenario = serializers.CharField()
    malicious_scenario = serializers.CharField()
    responses = serializers.DictField(child=serializers.CharField())


class StimuliResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    replace = serializers.BooleanField()
    rows = serializers.IntegerField(help_text="Rows in the upload.")
    new = serializers.ListField(child=serializers.CharField(), help_text="New query ids.")
    updated = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    lost_texts = serializers.IntegerField(
        help_text="Generated or edited texts that replacing deletes."
    )
    preview = StimulusRowSerializer(many=True)


class StimuliFileSerializer(serializers.Serializer):
    file = serializers.FileField(help_text="A .csv or .jsonl stimuli file.")


class StimuliRowsSerializer(serializers.Serializer):
    rows = serializers.ListField(
        child=serializers.DictField(),
        help_text="Objects shaped like the lines of a JSONL stimuli file.",
    )


PROBLEM_RE = re.compile(r"^(line \d+(?: \(query_id [^)]*\))?): (.*)$", re.S)


def _problem(text: str) -> dict:
    match = PROBLEM_RE.match(text)
    return {"path": match[1], "message": match[2]} if match else {"path": "", "message": text}


def _flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes", "on")


class StimuliView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    serializer_class = StimuliResultSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("dry_run", bool, description="Preview only: nothing is saved."),
            OpenApiParameter("replace", bool, description="The upload replaces all queries."),
        ],
        request={
            "multipart/form-data": StimuliFileSerializer,
            "application/json": StimuliRowsSerializer,
        },
        responses={200: StimuliResultSerializer, **errors(400, 403, 404, 409)},
        description="Upload stimuli as a CSV/JSONL file or as JSON rows. Every row's problems "
        "come back before anything is saved; with dry_run=1 the preview is all that happens.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        data, filename = self._upload(request)
        replace, dry_run = _flag(request, "replace"), _flag(request, "dry_run")
        try:
            stimuli_service.check_stimuli_editable(study)
        except stimuli_service.UploadError as exc:
            raise Conflict({"detail": str(exc)}) from exc
        preview = stimuli_service.preview_stimuli(
            study=study, data=data, filename=filename, replace=replace
        )
        if preview.problems:
            raise problems_error(
                f"the stimuli have {len(preview.problems)} problem(s); nothing was saved",
                [_problem(p) for p in preview.problems],
            )
        if not dry_run:
            with service_errors():
                services.import_stimuli(
                    study=study, rows=preview.rows, replace=replace, actor=request.user
                )
        body = {
            "dry_run": dry_run,
            "replace": replace,
            "rows": len(preview.rows),
            "new": preview.new,
            "updated": preview.updated,
            "removed": preview.removed,
            "lost_texts": preview.lost_texts,
            "preview": [
                {
                    "line": row.line,
                    "query_id": row.query_id,
                    "query": row.query,
                    "category": row.category,
                    "topic": row.topic,
                    "benign_scenario": row.benign_scenario,
                    "malicious_scenario": row.malicious_scenario,
                    "responses": row.responses,
                }
                for row in preview.rows
            ],
        }
        return Response(StimuliResultSerializer(body).data)

    def _upload(self, request) -> tuple[bytes, str]:
        upload = request.FILES.get("file")
        if upload is not None:
            try:
                stimuli_service.check_upload_size(upload.size)
            except stimuli_service.UploadError as exc:
                raise ValidationError({"file": [str(exc)]}) from exc
            return upload.read(), upload.name
        rows = request.data.get("rows") if hasattr(request.data, "get") else None
        if not isinstance(rows, list) or not rows:
            raise ValidationError(
                {"detail": "send a stimuli file as 'file' (multipart) or JSON {\"rows\": [...]}"}
            )
        if not all(isinstance(row, dict) for row in rows):
            raise ValidationError({"rows": ["every row must be a JSON object"]})
        text = "\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n"
        stimuli_service.check_upload_size(len(text.encode()))
        return text.encode(), "rows.jsonl"


class QuerySerializer(serializers.ModelSerializer):
    scenarios = serializers.SerializerMethodField()

    class Meta:
        model = Query
        fields = ["query_id", "text", "category", "topic", "source", "metadata", "scenarios"]
        read_only_fields = fields

    def get_scenarios(self, query: Query) -> dict[str, str]:
        return {s.motivation: s.text for s in query.scenarios.all()}


class QueryFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(method="search", label="Search query id or text")
    category = django_filters.CharFilter()

    class Meta:
        model = Query
        fields = ["q", "category"]

    def search(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(Q(query_id__icontains=value) | Q(text__icontains=value))


@extend_schema_view(**list_schema(QuerySerializer))
class QueryListView(generics.ListAPIView):
    """The study's queries with their scenarios."""

    permission_classes = [IsResearcher]
    serializer_class = QuerySerializer
    filterset_class = QueryFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no study
            return Query.objects.none()
        study = study_for(self.request, self.kwargs["slug"], Action.VIEW)
        return stimuli_service.query_table(study)


# --- Audit log ----------------------------------------------------------------------------


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AuditEvent
        fields = ["created_at", "action", "actor", "detail"]
        read_only_fields = fields


@extend_schema_view(**list_schema(AuditEventSerializer))
class AuditListView(generics.ListAPIView):
    """The study's audit log, newest first."""

    permission_classes = [IsResearcher]
    serializer_class = AuditEventSerializer
    filterset_fields = ["action"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no study
            return AuditEvent.objects.none()
        study = study_for(self.request, self.kwargs["slug"], Action.VIEW)
        return study.audit_events.select_related("actor").order_by("-created_at", "-pk")
