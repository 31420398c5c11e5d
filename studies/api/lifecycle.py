"""REST API of a study's life: launch (pilot or full), pause, resume, close, add slots,
archive and delete — each a call to studies.lifecycle."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import lifecycle
from studies.access import Action
from studies.api.common import IsResearcher, errors, service_errors, study_for


class LifecycleResultSerializer(serializers.Serializer):
    slug = serializers.CharField()
    status = serializers.CharField()
    target_participants = serializers.IntegerField()
    pilot_slots = serializers.IntegerField()
    slots = serializers.IntegerField(help_text="Participant slots the study has now.")
    slots_created = serializers.IntegerField(
        required=False, help_text="Slots this call created (launch, launch-full, add-slots)."
    )


class LaunchSerializer(serializers.Serializer):
    pilot_slots = serializers.IntegerField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="Launch a pilot with this many slots; the full launch follows later.",
    )


class AddSlotsSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, max_value=lifecycle.MAX_SLOTS)


class DeleteSerializer(serializers.Serializer):
    confirm = serializers.CharField(help_text="The study's slug, typed to confirm.")


def _result(study, created: int | None = None) -> dict:
    study.refresh_from_db()
    body = {
        "slug": study.slug,
        "status": study.status,
        "target_participants": study.target_participants,
        "pilot_slots": study.pilot_slots,
        "slots": lifecycle.slot_count(study),
    }
    if created is not None:
        body["slots_created"] = created
    return LifecycleResultSerializer(body).data


class _LifecycleView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = LifecycleResultSerializer


class LaunchView(_LifecycleView):
    @extend_schema(
        request=LaunchSerializer,
        responses={200: LifecycleResultSerializer, **errors(400, 403, 404, 409)},
        description="Check the study can run, create its participant slots and open it. "
        "A refusal lists every reason.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        serializer = LaunchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            created = lifecycle.launch_study(
                study=study,
                actor=request.user,
                pilot_slots=serializer.validated_data.get("pilot_slots"),
            )
        return Response(_result(study, created))


class LaunchFullView(_LifecycleView):
    @extend_schema(
        request=None,
        responses={200: LifecycleResultSerializer, **errors(403, 404, 409)},
        description="After a pilot: create the remaining slots up to the target.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        with service_errors():
            created = lifecycle.launch_full(study=study, actor=request.user)
        return Response(_result(study, created))


def _status_view(service, doc: str):
    class StatusView(_LifecycleView):
        @extend_schema(
            request=None,
            responses={200: LifecycleResultSerializer, **errors(403, 404, 409)},
            description=doc,
        )
        def post(self, request, slug: str):
            study = study_for(request, slug, Action.EDIT)
            with service_errors():
                service(study=study, actor=request.user)
            return Response(_result(study))

    StatusView.__name__ = StatusView.__qualname__ = (
        f"{service.__name__.title().replace('_', '')}View"
    )
    return StatusView


PauseView = _status_view(
    lifecycle.pause_study, "Stop new arrivals for now; people already taking part may finish."
)
ResumeView = _status_view(lifecycle.resume_study, "Let new participants join again.")
CloseView = _status_view(
    lifecycle.close_study,
    "No new arrivals ever again; people in progress may finish within their time limit.",
)


class AddSlotsView(_LifecycleView):
    @extend_schema(
        request=AddSlotsSerializer,
        responses={200: LifecycleResultSerializer, **errors(400, 403, 404, 409)},
        description="Raise a running study's target, balanced across its cells.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.EDIT)
        serializer = AddSlotsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            created = lifecycle.add_slots(
                study=study, count=serializer.validated_data["count"], actor=request.user
            )
        return Response(_result(study, created))


class ArchiveView(_LifecycleView):
    @extend_schema(
        request=None,
        responses={200: LifecycleResultSerializer, **errors(403, 404, 409)},
        description="Put a closed study away (owners only); its data is kept.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.MANAGE)
        with service_errors():
            lifecycle.archive_study(study=study, actor=request.user)
        return Response(_result(study))


class DeleteView(_LifecycleView):
    @extend_schema(
        request=DeleteSerializer,
        responses={204: None, **errors(400, 403, 404, 409)},
        description="Delete the study and everything recorded in it (owners only); "
        "'confirm' must be the study's slug.",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.MANAGE)
        serializer = DeleteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            lifecycle.delete_study(
                study=study, confirm=serializer.validated_data["confirm"], actor=request.user
            )
        return Response(status=status.HTTP_204_NO_CONTENT)
