"""REST API after the coders: finalise a pseudo-harmful set, read its quality report and
export, measure false refusal on it, and use it as a draft study's queries."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from modellab.classifiers.labels import HARMFULNESS_LABELS
from modellab.false_refusal import selectors as frr_selectors
from modellab.false_refusal.api import FalseRefusalRunSerializer, run_payload
from modellab.pseudo_harmful import export, outcome, report
from studies import access
from studies.api.common import Conflict, IsResearcher, errors
from studies.errors import StudyStateError
from studies.models import Study
from studies.services import DraftQueryError

REFERENCE = OpenApiParameter(
    "reference",
    int,
    required=False,
    description="A prompt set of yours (e.g. PHTest) whose finished runs give the targets' "
    "reference rates, side by side.",
)


class PseudoHarmfulFinaliseInputSerializer(serializers.Serializer):
    tie_decisions = serializers.DictField(
        child=serializers.ChoiceField(HARMFULNESS_LABELS),
        required=False,
        default=dict,
        help_text="Candidate id → label, for items the coders tied on (or nobody coded).",
    )
    overrides = serializers.DictField(
        child=serializers.ChoiceField(HARMFULNESS_LABELS),
        required=False,
        default=dict,
        help_text="Candidate id → label replacing the coders' outcome (recorded).",
    )
    finalise_incomplete = serializers.BooleanField(
        default=False, help_text="Finalise although some items have fewer than k codes."
    )
    name = serializers.SlugField(
        max_length=100, required=False, help_text="The prompt set's name (the job's by default)."
    )


class PseudoHarmfulProblemsSerializer(serializers.Serializer):
    """A refusal with every problem as a line; for finalising, the candidates waiting for the
    researcher too."""

    detail = serializers.CharField()
    problems = serializers.ListField(child=serializers.CharField(), required=False)
    ties = serializers.ListField(child=serializers.IntegerField(), required=False)
    incomplete = serializers.ListField(child=serializers.IntegerField(), required=False)


class PseudoHarmfulFinaliseResultSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.CharField()
    prompt_set = serializers.DictField()
    finalised = serializers.DictField(help_text="Who, when, and every decision taken.")
    report = serializers.CharField()
    export_csv = serializers.CharField()
    export_jsonl = serializers.CharField()


def _job(request, pk):
    try:
        return report.job_for(request.user, pk)
    except Http404:
        raise NotFound("No such pseudo-harmful job.") from None


def _reference(request):
    pk = request.query_params.get("reference")
    if not pk:
        return None
    try:
        return frr_selectors.prompt_set_for(request.user, pk)
    except Http404:
        raise ValidationError({"reference": ["no such prompt set of yours"]}) from None


class FinaliseView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = PseudoHarmfulFinaliseResultSerializer

    @extend_schema(
        request=PseudoHarmfulFinaliseInputSerializer,
        responses={
            201: PseudoHarmfulFinaliseResultSerializer,
            400: PseudoHarmfulProblemsSerializer,
            **errors(404),
        },
        description="Give each verified prompt its final label (coders' majority; ties and "
        "overrides by you) and make the final set a prompt set of the false-refusal benchmark. "
        "Every problem (undecided ties, incomplete items) is listed; nothing is written then.",
    )
    def post(self, request, pk: int):
        job = _job(request, pk)
        serializer = PseudoHarmfulFinaliseInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            prompt_set = outcome.finalise_pseudo_harmful_job(
                job=job,
                actor=request.user,
                tie_decisions=data["tie_decisions"],
                overrides=data["overrides"],
                finalise_incomplete=data["finalise_incomplete"],
                name=data.get("name"),
            )
        except outcome.FinaliseError as exc:
            # A plain 400 body, so the candidate ids stay numbers (ValidationError makes text).
            return Response(
                {
                    "detail": "nothing was finalised",
                    "problems": exc.problems,
                    "ties": exc.ties,
                    "incomplete": exc.incomplete,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        job.refresh_from_db()
        return Response(
            {
                "job": job.pk,
                "status": job.status,
                "prompt_set": {"id": prompt_set.pk, "name": prompt_set.name},
                "finalised": job.params["finalised"],
                "report": reverse("modellab:api-pseudo-harmful-report", args=[job.pk]),
                "export_csv": reverse("modellab:pseudo-harmful-export-csv", args=[job.pk]),
                "export_jsonl": reverse("modellab:pseudo-harmful-export-jsonl", args=[job.pk]),
            },
            status=status.HTTP_201_CREATED,
        )


class ReportView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        parameters=[REFERENCE],
        responses={200: OpenApiTypes.OBJECT, **errors(400, 404)},
        description="The set's quality report: counts per round, category and final label, "
        "the share refused by at least one target, prompt lengths, near-duplicate rate, and "
        "each target's false-refusal rates on the set beside the reference set's.",
    )
    def get(self, request, pk: int):
        job = _job(request, pk)
        return Response(
            report.quality_report(job, user=request.user, reference=_reference(request))
        )


class ExportView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, **errors(404, 409)},
        description="The final set's rows in PHTest's layout (ID, Request, Harmfulness), then "
        "category and provenance; the same as the CSV and JSONL downloads. 409 until the set "
        "is finalised.",
    )
    def get(self, request, pk: int):
        job = _job(request, pk)
        try:
            rows = export.export_rows(job)
        except export.NotFinalised as exc:
            raise Conflict({"detail": str(exc)}) from None
        return Response(
            {
                "columns": list(export.COLUMNS),
                "rows": rows,
                "csv": reverse("modellab:pseudo-harmful-export-csv", args=[job.pk]),
                "jsonl": reverse("modellab:pseudo-harmful-export-jsonl", args=[job.pk]),
            }
        )


class MeasureView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = FalseRefusalRunSerializer

    @extend_schema(
        request=None,
        responses={202: FalseRefusalRunSerializer, **errors(400, 404)},
        description="Start a false-refusal run of the job's targets on its final set, "
        "labelled by the job's classifier; follow it at the run's own endpoint.",
    )
    def post(self, request, pk: int):
        job = _job(request, pk)
        try:
            run = outcome.measure_false_refusal(job=job, actor=request.user)
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(run_payload(run), status=status.HTTP_202_ACCEPTED)


class PseudoHarmfulQueriesInputSerializer(serializers.Serializer):
    study = serializers.SlugField(help_text="The slug of a draft study you may edit.")


class QueriesView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        request=PseudoHarmfulQueriesInputSerializer,
        responses={201: OpenApiTypes.OBJECT, 400: PseudoHarmfulProblemsSerializer, **errors(404)},
        description="The final set's prompts as draft queries (no scenarios, no responses) of "
        "a draft study: ID → query_id, Request → text, category (or Harmfulness) → category.",
    )
    def post(self, request, pk: int):
        job = _job(request, pk)
        serializer = PseudoHarmfulQueriesInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        study = (
            access.studies_for(request.user, access.Action.EDIT)
            .filter(slug=serializer.validated_data["study"])
            .first()
        )
        if study is None:
            raise ValidationError({"study": ["no such study that you may edit"]})
        if job.prompt_set is None:
            raise ValidationError({"detail": "finalise the job first: it has no final set yet"})
        try:
            queries = outcome.use_as_study_queries(
                prompt_set=job.prompt_set, study=study, actor=request.user
            )
        except DraftQueryError as exc:
            raise ValidationError(
                {"detail": "nothing was imported", "problems": exc.problems}
            ) from None
        except (StudyStateError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(
            {
                "study": study.slug,
                "created": len(queries),
                "query_ids": [q.query_id for q in queries],
                "status": Study.Status(study.status).value,
            },
            status=status.HTTP_201_CREATED,
        )
