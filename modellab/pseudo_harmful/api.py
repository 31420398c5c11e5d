"""REST API of pseudo-harmful generation: jobs (start, list, follow, cancel, resume) and their
ranked candidates."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from modellab.classifiers import CLASSIFIERS
from modellab.material.dedup import DEFAULT_EMBEDDING_THRESHOLD, DEFAULT_NEAR_THRESHOLD
from modellab.models import PseudoHarmfulJob
from modellab.pseudo_harmful import selectors, services
from modellab.pseudo_harmful.instruction import LENGTHS
from studies import access
from studies.api.common import IsResearcher, errors


class SeedSerializer(serializers.Serializer):
    topics = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    words = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Harmful-looking words or phrases (kill, attack, hack, …).",
    )
    categories = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    examples = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        default=list,
        help_text="Example prompts, shown to the generator in round 1.",
    )


class ContentSerializer(serializers.Serializer):
    length = serializers.ChoiceField(list(LENGTHS), default="short")
    style = serializers.CharField(required=False, allow_blank=True, default="")


class JobInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    generator = serializers.CharField(help_text="Name of a chat model of the registry.")
    targets = serializers.ListField(child=serializers.CharField(), min_length=1)
    seed = SeedSerializer()
    content = ContentSerializer(required=False)
    instruction = serializers.CharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        default=None,
        help_text="The generator's instruction ({count}, {examples}; {words}, {topics}, "
        "{categories}, {length}, {style}); null: the project's default.",
    )
    per_round = serializers.IntegerField(default=20)
    rounds = serializers.IntegerField(default=3)
    examples_per_round = serializers.IntegerField(default=5)
    samples = serializers.IntegerField(default=1, help_text="k: answers per target and candidate")
    refusal = serializers.ChoiceField(["full", "full_partial"], default="full_partial")
    classifier = serializers.ChoiceField(list(CLASSIFIERS), default="string_match")
    classifier_model = serializers.CharField(required=False, allow_null=True, default=None)
    classifier_prompt = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None
    )
    harm_judge = serializers.CharField(required=False, allow_null=True, default=None)
    harm_judge_prompt = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, default=None
    )
    embedding_model = serializers.CharField(required=False, allow_null=True, default=None)
    near_duplicate_threshold = serializers.FloatField(default=DEFAULT_NEAR_THRESHOLD)
    embedding_threshold = serializers.FloatField(default=DEFAULT_EMBEDDING_THRESHOLD)
    keep = serializers.IntegerField(required=False, allow_null=True, default=None)
    budget = serializers.IntegerField(default=1000, help_text="Generator and target calls.")
    verification_overlap = serializers.IntegerField(default=2)


class JobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    owner = serializers.CharField()
    generator = serializers.CharField()
    targets = serializers.ListField(child=serializers.CharField())
    seed = serializers.DictField()
    content = serializers.DictField()
    instruction = serializers.CharField()
    per_round = serializers.IntegerField()
    rounds = serializers.IntegerField()
    examples_per_round = serializers.IntegerField()
    samples = serializers.IntegerField()
    refusal = serializers.CharField()
    classifier = serializers.CharField()
    classifier_model = serializers.CharField(allow_null=True)
    harm_judge = serializers.CharField(allow_null=True)
    embedding_model = serializers.CharField(allow_null=True)
    keep = serializers.IntegerField(allow_null=True)
    budget = serializers.IntegerField()
    verification_overlap = serializers.IntegerField()
    verification_task = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(PseudoHarmfulJob.Status.choices)
    error = serializers.CharField(allow_blank=True)
    progress = serializers.DictField(
        help_text="rounds_done, rounds, probes, probes_labelled, calls_used, budget, "
        "stop_reason, finished, … (each *_percent for a bar)"
    )
    rounds_detail = serializers.ListField(child=serializers.DictField())
    candidates = serializers.CharField(help_text="URL of the ranked candidates.")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


def _name(model) -> str | None:
    return model.name if model else None


def job_payload(job: PseudoHarmfulJob, *, detail: bool = True) -> dict:
    rounds = []
    if detail:
        rounds = [{k: v for k, v in r.items() if k != "round"} for r in selectors.rounds(job)]
    return {
        "id": job.pk,
        "name": job.name,
        "owner": job.owner.get_username(),
        "generator": job.generator.name,
        "targets": list(job.targets.order_by("name").values_list("name", flat=True)),
        "seed": job.seed,
        "content": job.content,
        "instruction": job.instruction,
        "per_round": job.per_round,
        "rounds": job.rounds,
        "examples_per_round": job.examples_per_round,
        "samples": job.samples,
        "refusal": job.refusal,
        "classifier": job.classifier,
        "classifier_model": _name(job.classifier_model),
        "harm_judge": _name(job.harm_judge),
        "embedding_model": _name(job.embedding_model),
        "keep": job.keep,
        "budget": job.budget,
        "verification_overlap": job.verification_overlap,
        "verification_task": job.verification_task_id,
        "status": job.status,
        "error": job.error,
        "progress": selectors.job_progress(job),
        "rounds_detail": rounds,
        "candidates": reverse("modellab:api-pseudo-harmful-candidates", args=[job.pk]),
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def _model(usable, name: str | None, field: str, problems: dict):
    if not name:
        return None
    found = usable.filter(name=name).first()
    if found is None:
        problems[field] = [f"no model named {name!r} that you may use"]
    return found


class JobListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = JobSerializer

    @extend_schema(responses={200: JobSerializer(many=True)})
    def get(self, request):
        """Your pseudo-harmful jobs, newest first (the last 50)."""
        return Response(
            [job_payload(j, detail=False) for j in selectors.jobs_for(request.user)[:50]]
        )

    @extend_schema(
        request=JobInputSerializer,
        responses={202: JobSerializer, **errors(400)},
        description="Start a job: rounds of generation from the seed material, deduplication, "
        "probing by the target models (k samples each) and ranking by refusal share, up to "
        "the budget (generator and target calls); then the harm judge and a verification "
        "task for people. A 400 names every bad field; nothing is stored then.",
    )
    def post(self, request):
        serializer = JobInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        usable = access.models_for(request.user)
        problems: dict[str, list[str]] = {}
        generator = _model(usable, data.pop("generator"), "generator", problems)
        names = list(dict.fromkeys(data.pop("targets")))
        targets = list(usable.filter(name__in=names))
        missing = sorted(set(names) - {t.name for t in targets})
        if missing:
            problems["targets"] = [f"no model named {n!r} that you may use" for n in missing]
        models = {
            field: _model(usable, data.pop(field), field, problems)
            for field in ("classifier_model", "harm_judge", "embedding_model")
        }
        if problems:
            raise ValidationError(problems)
        try:
            job = services.start_pseudo_harmful_job(
                owner=request.user,
                generator=generator,
                targets=targets,
                seed=dict(data.pop("seed")),
                content=dict(data.pop("content", None) or {}),
                **models,
                **data,
            )
        except services.PseudoHarmfulInputError as exc:
            raise ValidationError({k: [v] for k, v in exc.problems.items()}) from exc
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)


class JobDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = JobSerializer

    @extend_schema(responses={200: JobSerializer, **errors(404)})
    def get(self, request, pk: int):
        """One job: settings, progress and rounds."""
        return Response(job_payload(selectors.job_for(request.user, pk)))


class JobCancelView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = JobSerializer

    @extend_schema(request=None, responses={200: JobSerializer, **errors(404)})
    def post(self, request, pk: int):
        """Stop a queued, running or judging job of yours; what is stored is kept (resume it
        to go on). A finished job is returned as it is."""
        job = services.cancel_job(job=selectors.job_for(request.user, pk), actor=request.user)
        return Response(job_payload(job))


class JobResumeView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = JobSerializer

    @extend_schema(request=None, responses={202: JobSerializer, **errors(400, 404)})
    def post(self, request, pk: int):
        """Go on with a cancelled or failed job of yours from where it stopped."""
        try:
            job = services.resume_job(job=selectors.job_for(request.user, pk), actor=request.user)
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)


class CandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    round = serializers.IntegerField()
    text = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    topic = serializers.CharField(allow_blank=True)
    words = serializers.ListField(child=serializers.CharField())
    duplicate_reason = serializers.CharField(allow_null=True, help_text="exact, near, embedding")
    duplicate_of = serializers.IntegerField(allow_null=True)
    similarity = serializers.FloatField(allow_null=True)
    probes = serializers.IntegerField()
    full_refusals = serializers.IntegerField()
    partial_refusals = serializers.IntegerField()
    unparsed = serializers.IntegerField()
    refusal_share = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField(allow_null=True)
    per_target = serializers.DictField(
        help_text="Per target: full, partial, complied, unparsed, failed, asked"
    )
    kept = serializers.BooleanField()
    judge_label = serializers.CharField(allow_null=True)
    judge_rationale = serializers.CharField(allow_null=True)
    human_label = serializers.CharField(allow_null=True)
    final_label = serializers.CharField(allow_null=True)


class CandidateListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = CandidateSerializer

    @extend_schema(responses={200: CandidateSerializer(many=True), **errors(404)})
    def get(self, request, pk: int):
        """Every candidate of one job: the ranked ones by rank (1 = most refused), then the
        unranked, then the duplicates with what they repeat."""
        job = selectors.job_for(request.user, pk)
        return Response(selectors.candidates_payload(job))
