"""REST API of model behaviour: start a classification run, follow it, read its distribution."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from modellab.behaviour import selectors, services
from modellab.classifiers.labels import SCHEMES, THREE_WAY
from modellab.models import ClassificationRun
from studies import access
from studies.access import Action
from studies.api.common import IsResearcher, errors, study_for

# A plain field with the values named: a choice field would add a second enum called "status"
# to the schema beside the platform's others.
RUN_STATUSES = "One of " + ", ".join(ClassificationRun.Status.values) + "."


class BehaviourRunInputSerializer(serializers.Serializer):
    classifier = serializers.ChoiceField(list(services.CLASSIFIERS))
    scheme = serializers.ChoiceField(list(SCHEMES), default=THREE_WAY)
    models = serializers.ListField(
        child=serializers.SlugField(),
        allow_empty=False,
        help_text="Names of the models whose natural responses to classify.",
    )
    judge_model = serializers.SlugField(
        required=False, allow_null=True, help_text="llm_judge: the registry model that judges."
    )
    judge_prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="llm_judge: the judging prompt; empty for the default of the scheme.",
    )
    phrases = serializers.DictField(
        required=False,
        allow_null=True,
        help_text='string_match: {"refusal": [...], "partial": [...], "window": N}, each '
        "optional (the default list otherwise).",
    )


class BehaviourProgressSerializer(serializers.Serializer):
    status = serializers.CharField(help_text=RUN_STATUSES)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    unparsed = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    percent = serializers.IntegerField()
    finished = serializers.BooleanField()


class BehaviourDistributionRowSerializer(serializers.Serializer):
    model = serializers.CharField()
    category = serializers.CharField(help_text='"(all)" pools every category.')
    framing = serializers.CharField(help_text='query_only, benign, malicious; "(all)" pools them.')
    label = serializers.CharField()
    count = serializers.IntegerField()
    n = serializers.IntegerField(help_text="Parsed responses of the cell (the shares' base).")
    share = serializers.FloatField(allow_null=True)
    ci_low = serializers.FloatField(allow_null=True, help_text="Wilson 95% CI")
    ci_high = serializers.FloatField(allow_null=True)
    n_unparsed = serializers.IntegerField()
    n_responses = serializers.IntegerField()


class BehaviourRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    name = serializers.CharField()
    classifier = serializers.CharField()
    scheme = serializers.CharField()
    judge_model = serializers.CharField(allow_null=True)
    models = serializers.ListField(child=serializers.CharField())
    params = serializers.DictField(help_text="Provenance: every setting that decided the labels.")
    status = serializers.CharField(help_text=RUN_STATUSES)
    error = serializers.CharField(allow_blank=True)
    progress = BehaviourProgressSerializer()
    distribution = BehaviourDistributionRowSerializer(
        many=True, required=False, help_text="Run detail only: the labels stored so far."
    )
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def run_payload(run: ClassificationRun, *, detail: bool = False) -> dict:
    payload = {
        "id": run.pk,
        "study": run.study.slug,
        "name": run.display_name,
        "classifier": run.classifier,
        "scheme": run.scheme,
        "judge_model": run.judge_model.name if run.judge_model_id else None,
        "models": sorted(m.name for m in run.language_models.all()),
        "params": run.params,
        "status": run.status,
        "error": run.error,
        "progress": selectors.run_progress(run),
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }
    if detail:
        payload["distribution"] = selectors.distribution(run)
    return payload


def _models_named(queryset, names: list[str], field: str, missing_text: str) -> list:
    found = {m.name: m for m in queryset.filter(name__in=names)}
    missing = [n for n in names if n not in found]
    if missing:
        raise ValidationError({field: [f"{', '.join(missing)}: {missing_text}"]})
    return [found[n] for n in dict.fromkeys(names)]


class BehaviourRunListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = BehaviourRunSerializer

    @extend_schema(responses={200: BehaviourRunSerializer(many=True), **errors(404)})
    def get(self, request, slug: str):
        """The study's classification runs of natural responses, newest first (the last 50)."""
        study = study_for(request, slug, Action.VIEW)
        runs = selectors.runs_for_study(study).prefetch_related("language_models")[:50]
        return Response([run_payload(r) for r in runs])

    @extend_schema(
        request=BehaviourRunInputSerializer,
        responses={202: BehaviourRunSerializer, **errors(400, 403, 404)},
        description="Classify the natural responses of the given models (editors and owners). "
        "The same settings again reuse their run and label only what it has not labelled.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        serializer = BehaviourRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        models = _models_named(
            services.models_with_natural_responses(study),
            data["models"],
            "models",
            "no natural responses of this model in the study",
        )
        judge = None
        if data.get("judge_model"):
            judge = _models_named(
                access.models_for(request.user),
                [data["judge_model"]],
                "judge_model",
                "no such model that you may use",
            )[0]
        try:
            run = services.start_classification_run(
                study=study,
                classifier=data["classifier"],
                scheme=data["scheme"],
                models=models,
                judge_model=judge,
                judge_prompt=data.get("judge_prompt"),
                phrases=data.get("phrases"),
                actor=request.user,
            )
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(run_payload(run, detail=True), status=status.HTTP_202_ACCEPTED)


class BehaviourRunDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = BehaviourRunSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "progress_only",
                bool,
                description="true: leave the distribution out (what a progress bar polls).",
            )
        ],
        responses={200: BehaviourRunSerializer, **errors(404)},
    )
    def get(self, request, slug: str, pk: int):
        """One run: its progress while it runs, its distribution (labels so far) always."""
        study = study_for(request, slug, Action.VIEW)
        run = selectors.runs_for_study(study).filter(pk=pk).first()
        if run is None:
            raise NotFound("No such classification run.")
        progress_only = request.query_params.get("progress_only", "").lower() in ("1", "true")
        return Response(run_payload(run, detail=not progress_only))
