"""REST API of query–scenario generation: jobs (start, follow, cancel, resume, finalise, add to a
study) and their candidates."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from modellab.models import QueryScenarioCandidate, QueryScenarioJob
from modellab.query_scenarios import selectors, services
from studies import access
from studies.access import Action
from studies.api.common import IsResearcher, errors
from studies.errors import StudyStateError
from studies.generation.selectors import chat_models_for, embedding_models_for


class QueryScenarioJobInputSerializer(serializers.Serializer):
    name = serializers.SlugField(max_length=100)
    generator = serializers.CharField(help_text="Name of a chat model of the registry.")
    intent_judge = serializers.CharField(help_text="Name of the chat model that judges intent.")
    intent_judge_prompt = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="The judging prompt, with {scenario} and {query}; null: the project's.",
    )
    embedding_model = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="An embedding model (dedup)."
    )
    categories = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        help_text="[{name, definition, topics: [...]}]; optional when study is given.",
    )
    examples = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        help_text="Seed examples: {category, topic, query, benign_scenario, malicious_scenario}.",
    )
    instruction = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        default=None,
        help_text="The generator's instruction; null: the project's default for the kind.",
    )
    per_round = serializers.IntegerField(default=20)
    rounds = serializers.IntegerField(default=3)
    examples_per_round = serializers.IntegerField(default=5)
    near_duplicate_threshold = serializers.FloatField(default=0.9)
    embedding_threshold = serializers.FloatField(default=0.92)
    budget = serializers.IntegerField(default=1000, help_text="Generator and judge calls.")
    verification_overlap = serializers.IntegerField(default=2, help_text="Coders per item.")
    study = serializers.CharField(
        required=False,
        allow_null=True,
        default=None,
        help_text="A study's slug: write scenarios for its queries that have none.",
    )


class QueryScenarioJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.ChoiceField(QueryScenarioJob.Status.choices)
    error = serializers.CharField(allow_blank=True)
    generator = serializers.CharField()
    intent_judge = serializers.CharField(allow_null=True)
    embedding_model = serializers.CharField(allow_null=True)
    study = serializers.CharField(allow_null=True)
    output_study = serializers.CharField(allow_null=True)
    categories = serializers.ListField(child=serializers.DictField())
    examples = serializers.ListField(child=serializers.DictField())
    instruction = serializers.CharField()
    per_round = serializers.IntegerField()
    rounds = serializers.IntegerField()
    examples_per_round = serializers.IntegerField()
    budget = serializers.IntegerField()
    verification_overlap = serializers.IntegerField()
    verification_task = serializers.IntegerField(allow_null=True)
    progress = serializers.DictField(help_text="rounds, candidates, judged, accepted, kept…")
    stimuli_csv = serializers.CharField()
    stimuli_jsonl = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


def job_payload(job: QueryScenarioJob) -> dict:
    return {
        "id": job.pk,
        "name": job.name,
        "kind": services.job_kind(job),
        "status": job.status,
        "error": job.error,
        "generator": job.generator.name,
        "intent_judge": job.intent_judge.name if job.intent_judge else None,
        "embedding_model": job.embedding_model.name if job.embedding_model else None,
        "study": job.study.slug if job.study else None,
        "output_study": job.output_study.slug if job.output_study else None,
        "categories": job.categories,
        "examples": job.examples,
        "instruction": job.instruction,
        "per_round": job.per_round,
        "rounds": job.rounds,
        "examples_per_round": job.examples_per_round,
        "budget": job.budget,
        "verification_overlap": job.verification_overlap,
        "verification_task": job.verification_task_id,
        "progress": selectors.job_progress(job),
        "stimuli_csv": reverse("modellab:query-scenarios-csv", args=[job.pk]),
        "stimuli_jsonl": reverse("modellab:query-scenarios-jsonl", args=[job.pk]),
        "created_at": job.created_at,
        "finished_at": job.finished_at,
    }


class QueryScenarioCandidateSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    round = serializers.IntegerField()
    category = serializers.CharField()
    topic = serializers.CharField(allow_blank=True)
    query = serializers.CharField()
    benign_scenario = serializers.CharField()
    malicious_scenario = serializers.CharField()
    source_query = serializers.CharField(allow_null=True)
    duplicate_reason = serializers.CharField(allow_blank=True)
    duplicate_of = serializers.IntegerField(allow_null=True)
    similarity = serializers.FloatField(allow_null=True)
    judge = serializers.DictField(help_text="benign/malicious: label and reasoning; accepted.")
    human = serializers.DictField(help_text="benign/malicious: the reading that counts.")
    kept = serializers.BooleanField()
    final_source = serializers.CharField(allow_blank=True)
    query_id = serializers.CharField(allow_blank=True)


def candidate_payload(c: QueryScenarioCandidate) -> dict:
    return {
        "id": c.pk,
        "position": c.position,
        "round": c.round.number,
        "category": c.category,
        "topic": c.topic,
        "query": c.query,
        "benign_scenario": c.benign_scenario,
        "malicious_scenario": c.malicious_scenario,
        "source_query": c.source_query.query_id if c.source_query else None,
        "duplicate_reason": c.duplicate_reason,
        "duplicate_of": c.duplicate_of_id,
        "similarity": c.similarity,
        "judge": {
            "benign": {"label": c.judge_benign_label, "reasoning": c.judge_benign_reasoning},
            "malicious": {
                "label": c.judge_malicious_label,
                "reasoning": c.judge_malicious_reasoning,
            },
            "accepted": c.judge_accepted,
        },
        "human": {"benign": c.human_benign_label, "malicious": c.human_malicious_label},
        "kept": c.kept,
        "final_source": c.final_source,
        "query_id": c.query_id,
    }


def _model(user, field: str, name: str | None, *, embedding: bool = False):
    if not name:
        return None
    usable = embedding_models_for(user) if embedding else chat_models_for(user)
    model = usable.filter(name=name).first()
    if model is None:
        kind = "embedding" if embedding else "chat"
        raise ValidationError({field: [f"no {kind} model named {name!r} that you may use"]})
    return model


class JobListView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioJobSerializer

    @extend_schema(responses={200: QueryScenarioJobSerializer(many=True)})
    def get(self, request):
        """Your query–scenario jobs, newest first (the last 50)."""
        return Response([job_payload(j) for j in selectors.jobs_for(request.user)[:50]])

    @extend_schema(
        request=QueryScenarioJobInputSerializer,
        responses={202: QueryScenarioJobSerializer, **errors(400)},
        description="Start a job: new ambiguous queries with a benign and a malicious scenario "
        "per category (categories, examples), or scenarios for a study's queries that have "
        "none (study). Every bad field is named in the 400 answer; nothing is stored then.",
    )
    def post(self, request):
        serializer = QueryScenarioJobInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        user = request.user
        data["generator"] = _model(user, "generator", data["generator"])
        data["intent_judge"] = _model(user, "intent_judge", data["intent_judge"])
        data["embedding_model"] = _model(
            user, "embedding_model", data["embedding_model"], embedding=True
        )
        if data["study"]:
            study = access.studies_for(user).filter(slug=data["study"]).first()
            if study is None:
                raise ValidationError({"study": [f"no study {data['study']!r} that you can see"]})
            data["study"] = study
        try:
            job = services.start_query_scenario_job(owner=user, **data)
        except services.QueryScenarioInputError as exc:
            raise ValidationError({k: [v] for k, v in exc.problems.items()}) from exc
        return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)


class JobDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioJobSerializer

    @extend_schema(responses={200: QueryScenarioJobSerializer, **errors(404)})
    def get(self, request, pk: int):
        """One job of yours with its progress."""
        return Response(job_payload(selectors.job_for(request.user, pk)))


class JobCancelView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioJobSerializer

    @extend_schema(request=None, responses={200: QueryScenarioJobSerializer, **errors(404)})
    def post(self, request, pk: int):
        """Stop a queued or running job; what it stored is kept (resume it to go on)."""
        job = services.cancel_query_scenario_job(
            job=selectors.job_for(request.user, pk), actor=request.user
        )
        return Response(job_payload(job))


class JobResumeView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioJobSerializer

    @extend_schema(request=None, responses={202: QueryScenarioJobSerializer, **errors(400, 404)})
    def post(self, request, pk: int):
        """Go on with a cancelled or failed job from where it stopped."""
        try:
            job = services.resume_query_scenario_job(
                job=selectors.job_for(request.user, pk), actor=request.user
            )
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(job_payload(job), status=status.HTTP_202_ACCEPTED)


class QueryScenarioFinaliseSerializer(serializers.Serializer):
    tie_decisions = serializers.DictField(
        child=serializers.ChoiceField(["benign", "malicious", "ambiguous"]),
        required=False,
        default=dict,
        help_text="Source key (qs:<candidate>:<benign|malicious>) → your reading of a tie.",
    )


class JobFinaliseView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioJobSerializer

    @extend_schema(
        request=QueryScenarioFinaliseSerializer,
        responses={200: QueryScenarioJobSerializer, **errors(400, 404)},
    )
    def post(self, request, pk: int):
        """Read the coders' labels (ties: your decisions) and keep the queries whose benign
        scenario reads benign and malicious one malicious. 400 lists items still uncoded or
        ties undecided."""
        job = selectors.job_for(request.user, pk)
        serializer = QueryScenarioFinaliseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = services.finalise_query_scenario_job(
                job=job,
                actor=request.user,
                tie_decisions=serializer.validated_data["tie_decisions"],
            )
        except (ValueError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(job_payload(job))


class QueryScenarioAddToStudySerializer(serializers.Serializer):
    study = serializers.CharField(help_text="The slug of a draft study you may edit.")


class JobAddToStudyView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioJobSerializer

    @extend_schema(
        request=QueryScenarioAddToStudySerializer,
        responses={200: QueryScenarioJobSerializer, **errors(400, 404)},
    )
    def post(self, request, pk: int):
        """Put the kept set into a draft study: new queries are imported as stimuli; a
        scenarios-only job writes the scenarios of its study's queries."""
        job = selectors.job_for(request.user, pk)
        serializer = QueryScenarioAddToStudySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        slug = serializer.validated_data["study"]
        study = access.studies_for(request.user, Action.EDIT).filter(slug=slug).first()
        if study is None:
            raise ValidationError({"study": [f"no study {slug!r} that you may edit"]})
        try:
            services.add_to_study(job=job, study=study, actor=request.user)
        except (ValueError, StudyStateError, PermissionDenied) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        job.refresh_from_db()
        return Response(job_payload(job))


class JobCandidatesView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = QueryScenarioCandidateSerializer

    @extend_schema(responses={200: QueryScenarioCandidateSerializer(many=True), **errors(404)})
    def get(self, request, pk: int):
        """Every candidate of a job in order of arrival, with duplicates, the judge's
        readings and reasoning, and the coders' readings."""
        job = selectors.job_for(request.user, pk)
        return Response([candidate_payload(c) for c in selectors.candidates(job)])
