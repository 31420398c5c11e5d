"""REST API of power planning: start a simulation of a study's design, follow it, read it."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import power_jobs
from studies.access import Action
from studies.analysis.power import PowerInputError
from studies.analysis.power.simulation import ADJUSTMENTS, MAX_SIMULATIONS
from studies.api.common import IsResearcher, errors, study_for
from studies.models import PowerAnalysis


class PowerAnalysisInputSerializer(serializers.Serializer):
    source = serializers.ChoiceField(
        list(power_jobs.SOURCES),
        default="typed",
        help_text="typed: the values in `assumptions`; pilot: a pilot study's analysis.",
    )
    measure = serializers.CharField(help_text="The question (measure) to plan for.")
    pilot = serializers.SlugField(
        required=False, allow_null=True, help_text="The pilot study's slug (source=pilot)."
    )
    assumptions = serializers.DictField(
        required=False,
        help_text="source=typed: intercept, response_type {type: effect}, motivation "
        "{level: effect}, interaction {type: {level: effect}}, sd_participant, sd_query, "
        "sd_residual (see examples/refusal-perception/power.yaml).",
    )
    round = serializers.BooleanField(
        default=True, help_text="Round and clip simulated ratings to the question's scale."
    )
    participants = serializers.CharField(
        default="80,160,...,960", help_text="Participant counts: 80,160,...,960 or a list."
    )
    simulations = serializers.IntegerField(min_value=10, max_value=MAX_SIMULATIONS, default=500)
    alpha = serializers.FloatField(min_value=0.0, max_value=0.5, default=0.05)
    seed = serializers.IntegerField(min_value=0, max_value=2**32 - 1, default=0)
    adjust = serializers.ChoiceField(list(ADJUSTMENTS), default="none")
    queries = serializers.IntegerField(
        min_value=1, required=False, help_text="For a study without queries: how many."
    )


class PowerProgressSerializer(serializers.Serializer):
    status = serializers.ChoiceField(PowerAnalysis.Status.choices)
    done = serializers.IntegerField()
    total = serializers.IntegerField()
    percent = serializers.IntegerField()
    finished = serializers.BooleanField()


class PowerAnalysisSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    status = serializers.ChoiceField(PowerAnalysis.Status.choices)
    error = serializers.CharField(allow_blank=True)
    params = serializers.DictField(help_text="What was simulated, the assumptions resolved.")
    progress = PowerProgressSerializer()
    result = serializers.DictField(
        allow_null=True,
        help_text="When done: rows (participants, term, power, mc_se, ci_low, ci_high, ...).",
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def power_payload(power: PowerAnalysis) -> dict:
    return {
        "id": power.pk,
        "study": power.study.slug,
        "status": power.status,
        "error": power.error,
        "params": power.params,
        "progress": power_jobs.progress_of(power),
        "result": power.result if power.status == PowerAnalysis.Status.DONE else None,
        "created_at": power.created_at,
        "started_at": power.started_at,
        "finished_at": power.finished_at,
    }


class PowerAnalysisListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = PowerAnalysisSerializer

    @extend_schema(responses={200: PowerAnalysisSerializer(many=True), **errors(404)})
    def get(self, request, slug: str):
        """The study's power analyses, newest first (the last 50)."""
        study = study_for(request, slug, Action.VIEW)
        return Response([power_payload(p) for p in study.power_analyses.all()[:50]])

    @extend_schema(
        request=PowerAnalysisInputSerializer,
        responses={202: PowerAnalysisSerializer, **errors(400, 403, 404)},
        description="Queue a power analysis of the study's planned design (editors and owners).",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        serializer = PowerAnalysisInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            power = power_jobs.request_power_analysis(
                study=study, params=dict(serializer.validated_data), actor=request.user
            )
        except PowerInputError as exc:
            raise ValidationError({k or "detail": [v] for k, v in exc.problems.items()}) from None
        return Response(power_payload(power), status=status.HTTP_202_ACCEPTED)


class PowerAnalysisDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = PowerAnalysisSerializer

    @extend_schema(responses={200: PowerAnalysisSerializer, **errors(404)})
    def get(self, request, slug: str, pk: int):
        """One power analysis: its progress while it runs, its result when done."""
        study = study_for(request, slug, Action.VIEW)
        power = study.power_analyses.filter(pk=pk).first()
        if power is None:
            raise NotFound("No such power analysis.")
        return Response(power_payload(power))
