"""REST API for researchers: the model registry and generation jobs (thin over services)."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import access
from studies.errors import StudyStateError
from studies.generation import selectors, services
from studies.models import GenerationJob, LanguageModel


class IsResearcher(permissions.BasePermission):
    """Any signed-in, active account; what it may touch is decided by studies.access."""

    message = "Sign in first."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_active)


class LanguageModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = LanguageModel
        fields = [
            "name",
            "backend",
            "backend_settings",
            "queue",
            "temperature",
            "max_tokens",
            "seed",
            "created_at",
        ]
        read_only_fields = ["created_at"]


class GenerationJobInputSerializer(serializers.Serializer):
    model = serializers.SlugRelatedField(slug_field="name", queryset=LanguageModel.objects.all())
    kind = serializers.ChoiceField(GenerationJob.Kind.values, default=GenerationJob.Kind.STRATEGY)
    mode = serializers.ChoiceField(GenerationJob.Mode.values, default=GenerationJob.Mode.PER_TYPE)
    samples = serializers.IntegerField(min_value=1, max_value=100, default=1)
    instructions = serializers.DictField(child=serializers.CharField(), required=False)


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


def _register(data: dict, user) -> LanguageModel:
    try:
        return services.register_model(**data, actor=user)
    except ValueError as exc:
        raise ValidationError({"backend_settings": [str(exc)]}) from exc


class ModelListView(APIView):
    permission_classes = [IsResearcher]

    def get(self, request):
        return Response(LanguageModelSerializer(LanguageModel.objects.all(), many=True).data)

    def post(self, request):
        serializer = LanguageModelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = _register(dict(serializer.validated_data), request.user)
        return Response(LanguageModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    permission_classes = [IsResearcher]

    def get(self, request, name: str):
        return Response(LanguageModelSerializer(get_object_or_404(LanguageModel, name=name)).data)

    def put(self, request, name: str):
        model = get_object_or_404(LanguageModel, name=name)
        serializer = LanguageModelSerializer(model, data={**request.data, "name": name})
        serializer.is_valid(raise_exception=True)
        return Response(
            LanguageModelSerializer(_register(dict(serializer.validated_data), request.user)).data
        )


def _study(request, slug: str):
    return get_object_or_404(access.studies_for(request.user), slug=slug)


class StudyJobsView(APIView):
    permission_classes = [IsResearcher]

    def get(self, request, slug: str):
        return Response(
            [job_payload(job) for job in selectors.jobs_for_study(_study(request, slug))]
        )

    def post(self, request, slug: str):
        study = _study(request, slug)
        serializer = GenerationJobInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            job = services.start_generation_job(
                study=study, actor=request.user, **serializer.validated_data
            )
        except (StudyStateError, ValueError) as exc:
            raise ValidationError({"detail": str(exc)}) from exc
        return Response(job_payload(job), status=status.HTTP_201_CREATED)


def _job(request, pk: int) -> GenerationJob:
    studies = access.studies_for(request.user)
    return get_object_or_404(
        GenerationJob.objects.select_related("study", "model"), pk=pk, study__in=studies
    )


class JobDetailView(APIView):
    permission_classes = [IsResearcher]

    def get(self, request, pk: int):
        return Response(job_payload(_job(request, pk)))


class JobCancelView(APIView):
    permission_classes = [IsResearcher]

    def post(self, request, pk: int):
        job = services.cancel_job(job=_job(request, pk), actor=request.user)
        return Response(job_payload(job))
