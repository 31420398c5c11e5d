"""REST API of a study's members: everyone in the study reads the list; owners change it."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from studies import members
from studies.access import Action
from studies.api.common import IsResearcher, errors, study_for
from studies.models import StudyMembership


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = StudyMembership
        fields = ["username", "email", "role", "created_at"]
        read_only_fields = fields


class AddMemberSerializer(serializers.Serializer):
    user = serializers.CharField(
        max_length=254, help_text="Username, or an e-mail matching exactly one active account."
    )
    role = serializers.ChoiceField(StudyMembership.Role.choices)


class RoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(StudyMembership.Role.choices)


def _refused(exc: members.MembershipError) -> ValidationError:
    return ValidationError({"detail": str(exc)})


class MemberListView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = MemberSerializer

    @extend_schema(responses={200: MemberSerializer(many=True), **errors(404)})
    def get(self, request, slug: str):
        study = study_for(request, slug, Action.VIEW)
        return Response(MemberSerializer(members.members_of(study), many=True).data)

    @extend_schema(
        request=AddMemberSerializer,
        responses={201: MemberSerializer, **errors(400, 403, 404)},
        description="Give a researcher a role in the study (owners only).",
    )
    def post(self, request, slug: str):
        study = study_for(request, slug, Action.MANAGE)
        serializer = AddMemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            membership = members.add_member(
                study=study,
                identifier=serializer.validated_data["user"],
                role=serializer.validated_data["role"],
                actor=request.user,
            )
        except members.MembershipError as exc:
            raise _refused(exc) from exc
        return Response(MemberSerializer(membership).data, status=status.HTTP_201_CREATED)


def _member(study, username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None or not study.memberships.filter(user=user).exists():
        raise Http404("No such member.")
    return user


class MemberDetailView(APIView):
    permission_classes = [IsResearcher]
    parser_classes = [JSONParser]
    serializer_class = MemberSerializer

    @extend_schema(
        request=RoleSerializer,
        responses={200: MemberSerializer, **errors(400, 403, 404)},
        description="Change a member's role (owners only; the last owner stays owner).",
    )
    def patch(self, request, slug: str, username: str):
        study = study_for(request, slug, Action.MANAGE)
        user = _member(study, username)
        serializer = RoleSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            membership = members.change_role(
                study=study, user=user, role=serializer.validated_data["role"], actor=request.user
            )
        except members.MembershipError as exc:
            raise _refused(exc) from exc
        return Response(MemberSerializer(membership).data)

    @extend_schema(
        responses={204: None, **errors(400, 403, 404)},
        description="Take a researcher off the study (owners only; never the last owner).",
    )
    def delete(self, request, slug: str, username: str):
        study = study_for(request, slug, Action.MANAGE)
        user = _member(study, username)
        try:
            members.remove_member(study=study, user=user, actor=request.user)
        except members.MembershipError as exc:
            raise _refused(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
