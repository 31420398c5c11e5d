"""REST API of a study's participants: the list with quality flags, screening runs, decisions."""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from annotation.models import Participant
from studies.access import Action
from studies.api.common import IsResearcher, errors, list_schema, service_errors, study_for
from studies.datasets.quality import RULES


class FlagSerializer(serializers.Serializer):
    rule = serializers.ChoiceField(RULES, help_text="The quality rule that flagged them.")
    reason = serializers.CharField()


class ParticipantSerializer(serializers.ModelSerializer):
    participant_id = serializers.SerializerMethodField(
        help_text="The pseudonymous id of the exports (first 16 hex digits of the keyed hash)."
    )
    cell = serializers.SerializerMethodField(help_text="The between-participants cell.")
    flags = FlagSerializer(many=True, read_only=True)
    total_seconds = serializers.SerializerMethodField(
        help_text="Seconds from consent to completion (completed participants only)."
    )

    class Meta:
        model = Participant
        fields = [
            "id",
            "participant_id",
            "status",
            "cell",
            "is_pilot",
            "consented_at",
            "completed_at",
            "total_seconds",
            "device_class",
            "flags",
            "screened_at",
            "excluded",
            "exclusion_decision",
            "exclusion_reason",
            "exclusion_decided_at",
        ]
        read_only_fields = fields

    def get_participant_id(self, obj: Participant) -> str:
        return obj.pseudonym[:16]

    def get_cell(self, obj: Participant) -> dict[str, str]:
        return dict(obj.slot.cell) if obj.slot_id else {}

    def get_total_seconds(self, obj: Participant) -> float | None:
        if obj.consented_at is None or obj.completed_at is None:
            return None
        return round((obj.completed_at - obj.consented_at).total_seconds(), 3)


class ParticipantFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Participant.Status.choices)
    flag = django_filters.ChoiceFilter(
        choices=[(f, f) for f in (*annotation_selectors.FLAG_FILTERS, *RULES)],
        method="by_flag",
        label="flagged, not_flagged, excluded, undecided, or a rule's name",
    )

    class Meta:
        model = Participant
        fields = ["status", "flag"]

    def by_flag(self, queryset, name, value):
        return annotation_selectors.with_flag(queryset, value)


@extend_schema_view(**list_schema(ParticipantSerializer))
class ParticipantListView(generics.ListAPIView):
    """The study's participants, newest first, with their quality flags and the decision."""

    permission_classes = [IsResearcher]
    serializer_class = ParticipantSerializer
    filterset_class = ParticipantFilter

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no study
            return Participant.objects.none()
        study = study_for(self.request, self.kwargs["slug"], Action.VIEW)
        return annotation_selectors.participants_table(study)


class DecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(
        ["excluded", "kept"], help_text="Confirm the exclusion, or keep them in the data."
    )
    reason = serializers.CharField(max_length=500, help_text="Why; stored with the audit row.")
    replace = serializers.BooleanField(
        default=False,
        help_text="With excluded: add a replacement slot in their cell (a running study, a "
        "completed participant).",
    )


class DecisionView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        request=DecisionSerializer,
        responses={200: ParticipantSerializer, **errors(400, 403, 404)},
        description="Decide a participant's exclusion (editors and owners); an audit row.",
    )
    def post(self, request, slug: str, pk: int):
        study = study_for(request, slug, Action.EDIT)
        participant = get_object_or_404(Participant, pk=pk, study=study)
        serializer = DecisionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with service_errors():
            if data["decision"] == "excluded":
                participant = annotation_services.exclude_participant(
                    participant=participant,
                    reason=data["reason"],
                    actor=request.user,
                    replace=data["replace"],
                )
            else:
                participant = annotation_services.keep_participant(
                    participant=participant, reason=data["reason"], actor=request.user
                )
        participant = Participant.objects.select_related("slot").get(pk=participant.pk)
        return Response(ParticipantSerializer(participant).data)


class ScreeningSerializer(serializers.Serializer):
    screened = serializers.IntegerField()
    flagged = serializers.IntegerField()
    excluded = serializers.IntegerField()


class QualityChecksView(APIView):
    permission_classes = [IsResearcher]

    @extend_schema(
        request=None,
        responses={200: ScreeningSerializer, **errors(403, 404)},
        description="Run the quality rules on every finished participant now (editors).",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        outcome = annotation_services.screen_participants(study=study, actor=request.user)
        return Response(ScreeningSerializer(outcome).data)
