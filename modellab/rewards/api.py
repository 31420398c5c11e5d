"""REST API of reward scoring: start (or resume) a run, follow it, read its scores, results per
response type and agreement with a measure."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from modellab.models import RewardRun, RewardScore
from modellab.rewards import selectors, services
from studies.access import Action
from studies.api.common import IsResearcher, errors, study_for
from studies.api.generation import UsableModelField
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES
from studies.models import LanguageModel


class RewardRunInputSerializer(serializers.Serializer):
    model = UsableModelField(slug_field="name", queryset=LanguageModel.objects.none())
    scorer = serializers.ChoiceField(
        RewardRun.Scorer.values,
        help_text="reward_model: a transformers model holding a sequence-classification reward "
        "model; llm_judge: any registry model asked for a score from -3 to 3.",
    )
    judge_prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=services.MAX_JUDGE_PROMPT_CHARS,
        help_text="llm_judge only: the judge's instructions (default: the platform's prompt).",
    )


class RewardProgressSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    status = serializers.ChoiceField(RewardRun.Status.choices)
    error = serializers.CharField(allow_blank=True)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    unparsed = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    percent = serializers.IntegerField()
    finished = serializers.BooleanField()


class TypeResultSerializer(serializers.Serializer):
    response_type = serializers.CharField()
    n = serializers.IntegerField()
    mean = serializers.FloatField(allow_null=True)
    sd = serializers.FloatField(allow_null=True)
    z_mean = serializers.FloatField(allow_null=True)
    z_sd = serializers.FloatField(allow_null=True)


class RewardRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    model = serializers.CharField()
    scorer = serializers.CharField()
    judge_prompt = serializers.CharField(allow_blank=True)
    params = serializers.DictField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    progress = RewardProgressSerializer()
    by_response_type = TypeResultSerializer(many=True)


def run_payload(run: RewardRun) -> dict:
    return {
        "id": run.pk,
        "study": run.study.slug,
        "model": run.model.name,
        "scorer": run.scorer,
        "judge_prompt": run.judge_prompt,
        "params": run.params,
        "created_by": run.created_by.get_username() if run.created_by else None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "progress": selectors.run_progress(run),
        "by_response_type": selectors.results_by_type(run),
    }


def _run(request, slug: str, pk: int) -> RewardRun:
    study = study_for(request, slug, Action.VIEW)
    run = study.reward_runs.select_related("study", "model", "created_by").filter(pk=pk).first()
    if run is None:
        raise NotFound("No such reward run.")
    return run


class RewardRunListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = RewardRunSerializer

    @extend_schema(responses={200: RewardRunSerializer(many=True), **errors(404)})
    def get(self, request, slug: str):
        """The study's reward scoring runs, newest first."""
        study = study_for(request, slug, Action.VIEW)
        return Response([run_payload(r) for r in selectors.runs_for(study)])

    @extend_schema(
        request=RewardRunInputSerializer,
        responses={202: RewardRunSerializer, **errors(400, 403, 404)},
        description="Score every (query[, scenario], response) of the study (editors and "
        "owners, with a model they may use). The same model, scorer and prompt resume their "
        "run: only what is new, failed, unparsed or edited since is scored.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        serializer = RewardRunInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            run = services.start_reward_run(
                study=study,
                model=data["model"],
                scorer=data["scorer"],
                judge_prompt=data.get("judge_prompt") or None,
                actor=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        except PermissionDenied as exc:
            raise ValidationError({"model": [str(exc)]}) from None
        return Response(run_payload(run), status=status.HTTP_202_ACCEPTED)


class RewardRunDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = RewardRunSerializer

    @extend_schema(responses={200: RewardRunSerializer, **errors(404)})
    def get(self, request, slug: str, pk: int):
        """One run: progress, parameters and scores per response type (raw and z)."""
        return Response(run_payload(_run(request, slug, pk)))


class RewardRunCancelView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = RewardRunSerializer

    @extend_schema(request=None, responses={200: RewardRunSerializer, **errors(403, 404)})
    def post(self, request, slug: str, pk: int):
        """Stop a queued or running run (editors and owners): the scores not taken yet are
        cancelled, those stored are kept; starting the same scorer again scores what is
        missing. A finished run is returned as it is."""
        study_for(request, slug, Action.EDIT)
        run = services.cancel_run(run=_run(request, slug, pk), actor=request.user)
        return Response(run_payload(run))


class ScoreRowSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    model = serializers.CharField()
    scorer = serializers.CharField()
    query_id = serializers.CharField()
    category = serializers.CharField()
    response_type = serializers.CharField()
    motivation = serializers.CharField(
        allow_blank=True, help_text="The scenario read before the query; empty: the query alone."
    )
    variant_id = serializers.IntegerField()
    variant_model = serializers.CharField(allow_blank=True)
    variant_sample = serializers.IntegerField()
    status = serializers.ChoiceField(RewardScore.Status.values)
    score = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True, help_text="z-score within the run.")
    rationale = serializers.CharField(allow_blank=True)
    raw_answer = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()


class CorrelationSerializer(serializers.Serializer):
    n = serializers.IntegerField(help_text="Stimuli with both a score and ratings.")
    spearman = serializers.FloatField(allow_null=True)
    spearman_p = serializers.FloatField(allow_null=True)
    kendall = serializers.FloatField(allow_null=True, help_text="Kendall's tau-b.")
    kendall_p = serializers.FloatField(allow_null=True)
    pairs = serializers.IntegerField()
    pairs_compared = serializers.IntegerField(help_text="Pairs with no tie on either side.")
    pairs_agree = serializers.IntegerField()
    human_ties = serializers.IntegerField()
    reward_ties = serializers.IntegerField()
    pairwise_agreement = serializers.FloatField(
        allow_null=True, help_text="pairs_agree / pairs_compared (ties excluded)."
    )


class OverallCorrelationSerializer(CorrelationSerializer):
    ratings = serializers.IntegerField(help_text="Ratings behind the stimulus means.")


class MotivationCorrelationSerializer(CorrelationSerializer):
    motivation = serializers.CharField(allow_blank=True)


class AgreementSerializer(serializers.Serializer):
    run = serializers.IntegerField()
    measure = serializers.CharField()
    inclusion = serializers.CharField()
    overall = OverallCorrelationSerializer()
    by_motivation = MotivationCorrelationSerializer(many=True)


class RewardScoresView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = ScoreRowSerializer

    @extend_schema(responses={200: ScoreRowSerializer(many=True), **errors(404)})
    def get(self, request, slug: str, pk: int):
        """Every score of the run (the CSV download's rows): stimulus, status, score, z,
        rationale, raw answer, error, attempts."""
        return Response(selectors.score_rows(_run(request, slug, pk)))


class RewardAgreementView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = AgreementSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("measure", str, required=True, description="A question's key."),
            OpenApiParameter(
                "inclusion", str, enum=list(INCLUSION_RULES), default=DEFAULT_INCLUSION
            ),
        ],
        responses={200: AgreementSerializer, **errors(400, 404)},
    )
    def get(self, request, slug: str, pk: int):
        """Spearman, Kendall τ-b and pairwise agreement between the run's scores and the mean
        rating of ``measure`` per stimulus (all stimuli, and per framing)."""
        run = _run(request, slug, pk)
        measure = request.query_params.get("measure", "")
        keys = [q.key for q in selectors.measures(run.study)]
        if measure not in keys:
            raise ValidationError({"measure": [f"choose one of this study's questions: {keys}"]})
        inclusion = request.query_params.get("inclusion", DEFAULT_INCLUSION)
        if inclusion not in INCLUSION_RULES:
            raise ValidationError({"inclusion": [f"one of {', '.join(INCLUSION_RULES)}"]})
        return Response(selectors.agreement_with(run, measure, inclusion))
