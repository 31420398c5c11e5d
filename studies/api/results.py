"""REST API of what a study yields: the live dashboard's numbers and the analysis results."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import analysis_jobs, dashboard
from studies.access import Action
from studies.api.common import IsResearcher, errors, study_for
from studies.domain import DEFAULT_INCLUSION
from studies.exports import INCLUSION_CHOICES
from studies.models import AnalysisResult


class DashboardView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        responses={200: OpenApiTypes.OBJECT, **errors(404)},
        description="The live dashboard's numbers: the funnel (each state with what it "
        "counts), slots, fill per cell, completion times, time per item, attention checks.",
    )
    def get(self, request, slug: str):
        study = study_for(request, slug, Action.VIEW)
        return Response(dashboard.dashboard_numbers(study))


class AnalysisResultSerializer(serializers.ModelSerializer):
    class Meta:
        model = AnalysisResult
        fields = [
            "id",
            "inclusion",
            "status",
            "error",
            "n_ratings",
            "inputs_hash",
            "code_version",
            "requested_at",
            "finished_at",
            "duration_s",
        ]
        read_only_fields = fields


class AnalysisSerializer(serializers.Serializer):
    inclusion = serializers.CharField()
    result = AnalysisResultSerializer(allow_null=True, help_text="The latest finished result.")
    report = serializers.DictField(
        allow_null=True, help_text="The latest finished report: every number as JSON."
    )
    stale = serializers.BooleanField(help_text="There are ratings the report has not seen.")
    pending = AnalysisResultSerializer(
        allow_null=True, help_text="A computation queued or running now."
    )


class RecomputeSerializer(serializers.Serializer):
    inclusion = serializers.ChoiceField(sorted(INCLUSION_CHOICES), default=DEFAULT_INCLUSION)


INCLUSION = OpenApiParameter(
    "inclusion",
    str,
    enum=sorted(INCLUSION_CHOICES),
    description="Which participants count (default: included = completed and not excluded).",
)


def _inclusion(value: str | None) -> str:
    value = value or DEFAULT_INCLUSION
    if value not in INCLUSION_CHOICES:
        raise ValidationError(
            {"inclusion": [f"must be one of {', '.join(sorted(INCLUSION_CHOICES))}"]}
        )
    return value


class AnalysisView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = AnalysisSerializer

    @extend_schema(parameters=[INCLUSION], responses={200: AnalysisSerializer, **errors(400, 404)})
    def get(self, request, slug: str):
        """The latest stored analysis report of the study."""
        study = study_for(request, slug, Action.VIEW)
        inclusion = _inclusion(request.query_params.get("inclusion"))
        result = analysis_jobs.latest_result(study, inclusion)
        pending = AnalysisResult.objects.filter(
            study=study, inclusion=inclusion, status__in=analysis_jobs.OPEN
        ).first()
        return Response(
            {
                "inclusion": inclusion,
                "result": AnalysisResultSerializer(result).data if result else None,
                "report": result.report if result else None,
                "stale": analysis_jobs.is_stale(study, result),
                "pending": AnalysisResultSerializer(pending).data if pending else None,
            }
        )

    @extend_schema(
        request=RecomputeSerializer,
        responses={202: AnalysisResultSerializer, **errors(400, 404)},
        description="Queue a recomputation (one at a time per study and inclusion).",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.VIEW)
        serializer = RecomputeSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = analysis_jobs.request_analysis(
            study=study, inclusion=serializer.validated_data["inclusion"], actor=request.user
        )
        return Response(AnalysisResultSerializer(result).data, status=status.HTTP_202_ACCEPTED)
