"""REST API of the model registry: the models one may use; owners change theirs."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import access
from studies.api.common import IsResearcher, errors, list_schema
from studies.generation import services
from studies.models import LanguageModel


class LanguageModelSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    backend_settings = serializers.DictField(
        help_text="Backend settings; openai: base_url, model, api_key_env (a variable's NAME)…"
    )

    class Meta:
        model = LanguageModel
        fields = [
            "name",
            "kind",
            "backend",
            "backend_settings",
            "queue",
            "temperature",
            "max_tokens",
            "seed",
            "shared",
            "owner",
            "created_at",
        ]
        read_only_fields = ["owner", "created_at"]


def _register(data: dict, user) -> LanguageModel:
    try:
        return services.register_model(**data, actor=user)
    except ValueError as exc:
        raise ValidationError({"backend_settings": [str(exc)]}) from exc


@extend_schema_view(**list_schema(LanguageModelSerializer))
class ModelListView(generics.ListAPIView):
    """The models you may use: yours and the shared ones (all of them for superusers)."""

    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = LanguageModelSerializer
    filterset_fields = ["kind", "backend", "queue", "shared"]

    def get_queryset(self):
        return access.models_for(self.request.user).select_related("owner").order_by("name")

    @extend_schema(responses={201: LanguageModelSerializer, **errors(400)})
    def post(self, request):
        """Register a model; you become its owner."""
        serializer = LanguageModelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        model = _register(dict(serializer.validated_data), request.user)
        return Response(LanguageModelSerializer(model).data, status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = LanguageModelSerializer

    def _model(self, request, name: str) -> LanguageModel:
        model = access.models_for(request.user).filter(name=name).first()
        if model is None:
            raise Http404("No such model.")
        return model

    @extend_schema(responses={200: LanguageModelSerializer, **errors(404)})
    def get(self, request, name: str):
        return Response(LanguageModelSerializer(self._model(request, name)).data)

    @extend_schema(
        request=LanguageModelSerializer,
        responses={200: LanguageModelSerializer, **errors(400, 403, 404)},
    )
    def put(self, request, name: str):
        """Change a model (owner or superuser); base_url and api_key_env: superusers only."""
        model = self._model(request, name)
        if not access.can_change_model(request.user, model):
            raise PermissionDenied("Only the model's owner or a superuser may change it.")
        data = {**request.data, "name": name} if isinstance(request.data, dict) else request.data
        # The name is the URL's; a body naming another model cannot rename or hijack it.
        serializer = LanguageModelSerializer(model, data=data)
        serializer.is_valid(raise_exception=True)
        return Response(
            LanguageModelSerializer(_register(dict(serializer.validated_data), request.user)).data
        )
