"""REST API of generation jobs: start one for a study, follow its progress, cancel it."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import access
from studies.access import Action
from studies.api.common import IsResearcher, errors, service_errors, study_for
from studies.generation import selectors, services
from studies.generation.services import check_chat_model
from studies.models import GenerationJob, LanguageModel


class UsableModelField(serializers.SlugRelatedField):
    """A chat model by name, among those the caller may use (theirs and shared ones)."""

    def get_queryset(self):
        return access.models_for(self.context["request"].user)

    def to_internal_value(self, data):
        model = super().to_internal_value(data)
        try:
            check_chat_model(model)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return model


class GenerationJobInputSerializer(serializers.Serializer):
    model = UsableModelField(slug_field="name", queryset=LanguageModel.objects.none())
    kind = serializers.ChoiceField(GenerationJob.Kind.values, default=GenerationJob.Kind.STRATEGY)
    mode = serializers.ChoiceField(GenerationJob.Mode.values, default=GenerationJob.Mode.PER_TYPE)
    samples = serializers.IntegerField(min_value=1, max_value=100, default=1)
    instructions = serializers.DictField(child=serializers.CharField(), required=False)


class JobProgressSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    status = serializers.ChoiceField(GenerationJob.Status.values)
    error = serializers.CharField(allow_blank=True)
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    pending = serializers.IntegerField()
    running = serializers.IntegerField()
    percent = serializers.IntegerField()
    finished = serializers.BooleanField()


class GenerationJobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    study = serializers.CharField()
    model = serializers.CharField()
    kind = serializers.CharField()
    mode = serializers.CharField()
    samples = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    progress = JobProgressSerializer()


def job_payload(job: GenerationJob) -> dict:
    return {
        "id": job.pk,
        "study": job.study.slug,
        "model": job.model.name,
        "kind": job.kind,
        "mode": job.mode,
        "samples": job.samples,
        "created_at": job.created_at,
        "progress": selectors.job_progress(job),
    }


class StudyJobsView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = GenerationJobSerializer

    @extend_schema(responses={200: GenerationJobSerializer(many=True), **errors(404)})
    def get(self, request, slug: str):
        study = study_for(request, slug, Action.VIEW)
        return Response([job_payload(job) for job in selectors.jobs_for_study(study)])

    @extend_schema(
        request=GenerationJobInputSerializer,
        responses={201: GenerationJobSerializer, **errors(400, 403, 404, 409)},
    )
    def post(self, request, slug: str):
        """Have a model write the study's responses (a rerun fills only what is missing)."""
        study = study_for(request, slug, Action.EDIT)
        serializer = GenerationJobInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        with service_errors():
            job = services.start_generation_job(
                study=study, actor=request.user, **serializer.validated_data
            )
        return Response(job_payload(job), status=status.HTTP_201_CREATED)


def _job(request, pk: int, action: Action) -> GenerationJob:
    job = (
        GenerationJob.objects.select_related("study", "model")
        .filter(pk=pk, study__in=access.studies_for(request.user, Action.VIEW))
        .first()
    )
    if job is None:
        raise Http404("No such job.")
    access.require(request.user, action, job.study)
    return job


class JobDetailView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = GenerationJobSerializer

    @extend_schema(responses={200: GenerationJobSerializer, **errors(404)})
    def get(self, request, pk: int):
        return Response(job_payload(_job(request, pk, Action.VIEW)))


class JobCancelView(APIView):
    permission_classes = [IsResearcher]
    serializer_class = GenerationJobSerializer

    @extend_schema(request=None, responses={200: GenerationJobSerializer, **errors(403, 404)})
    def post(self, request, pk: int):
        """Stop a job; texts already written are kept."""
        job = services.cancel_job(job=_job(request, pk, Action.EDIT), actor=request.user)
        return Response(job_payload(job))
