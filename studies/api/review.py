"""REST API of the review of response texts: the filtered table, approve, reject, edit the
text (its history is kept) and approve several at once."""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import review
from studies.access import Action
from studies.api.common import IsResearcher, errors, list_schema, service_errors, study_for
from studies.generation import services
from studies.models import ResponseVariant


class EditSerializer(serializers.Serializer):
    at = serializers.CharField(allow_null=True)
    by = serializers.CharField(allow_null=True)
    previous_text = serializers.CharField(allow_blank=True)


class VariantSerializer(serializers.ModelSerializer):
    query_id = serializers.CharField(source="query.query_id", read_only=True)
    category = serializers.CharField(source="query.category", read_only=True)
    edits = serializers.SerializerMethodField()

    class Meta:
        model = ResponseVariant
        fields = [
            "id",
            "query_id",
            "category",
            "response_type",
            "model_name",
            "sample",
            "text",
            "source",
            "review_status",
            "provenance",
            "edits",
            "updated_at",
        ]
        read_only_fields = fields

    @staticmethod
    def get_edits(variant: ResponseVariant) -> list[dict]:
        edits = variant.provenance.get("edits", []) if isinstance(variant.provenance, dict) else []
        return EditSerializer([e for e in edits if isinstance(e, dict)], many=True).data


class VariantTextSerializer(serializers.Serializer):
    text = serializers.CharField(help_text="The new text; the previous one is kept in 'edits'.")


class BulkApproveSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), min_length=1)


class BulkApproveResultSerializer(serializers.Serializer):
    approved = serializers.IntegerField()


@extend_schema_view(**list_schema(VariantSerializer))
class VariantListView(generics.ListAPIView):
    """Every response text of the study, with its provenance; filter by category, response
    type, status, model (``-`` for imported/written texts), source, or search with ``q``."""

    permission_classes = [IsResearcher]
    serializer_class = VariantSerializer
    filterset_class = review.ReviewFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no study
            return ResponseVariant.objects.none()
        return review.review_queryset(study_for(self.request, self.kwargs["slug"], Action.VIEW))


def _variant(request, slug: str, pk: int, action: Action) -> ResponseVariant:
    study = study_for(request, slug, action)
    variant = review.review_queryset(study).filter(pk=pk).first()
    if variant is None:
        raise Http404("No such response text in this study.")
    return variant


class VariantDetailView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = VariantSerializer

    @extend_schema(responses={200: VariantSerializer, **errors(404)})
    def get(self, request, slug: str, pk: int):
        return Response(VariantSerializer(_variant(request, slug, pk, Action.VIEW)).data)

    @extend_schema(
        request=VariantTextSerializer,
        responses={200: VariantSerializer, **errors(400, 403, 404, 409)},
        description="Change the text; what it said before is kept in its edit history.",
    )
    def patch(self, request, slug: str, pk: int):
        variant = _variant(request, slug, pk, Action.EDIT)
        serializer = VariantTextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            variant = services.edit_variant(
                variant=variant, text=serializer.validated_data["text"], actor=request.user
            )
        return Response(VariantSerializer(_variant(request, slug, variant.pk, Action.VIEW)).data)


def _decision_view(service, doc: str):
    class DecisionView(APIView):
        permission_classes = [IsResearcher]
        serializer_class = VariantSerializer

        @extend_schema(
            request=None,
            responses={200: VariantSerializer, **errors(403, 404, 409)},
            description=doc,
        )
        def post(self, request, slug: str, pk: int):
            variant = _variant(request, slug, pk, Action.EDIT)
            with service_errors():
                service(variant=variant, actor=request.user)
            return Response(VariantSerializer(_variant(request, slug, pk, Action.VIEW)).data)

    name = service.__name__.title().replace("_", "")
    DecisionView.__name__ = DecisionView.__qualname__ = f"{name}View"
    return DecisionView


ApproveView = _decision_view(
    services.approve_variant,
    "Make this the text participants see for its query and type (others become rejected).",
)
RejectView = _decision_view(services.reject_variant, "Keep this text away from participants.")


class BulkApproveView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = BulkApproveResultSerializer

    @extend_schema(
        operation_id="studies_variants_bulk_approve",
        request=BulkApproveSerializer,
        responses={200: BulkApproveResultSerializer, **errors(400, 403, 404, 409)},
        description="Approve several texts at once, all or nothing (one per query and type).",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        serializer = BulkApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            count = services.approve_variants(
                study=study, variant_ids=serializer.validated_data["ids"], actor=request.user
            )
        return Response({"approved": count})
