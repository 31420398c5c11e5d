"""What every API module shares: who may call, the study a request may act on, errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import IntegrityError
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.request import Request

from studies import access
from studies.access import Action
from studies.errors import LaunchRefused, StudyStateError
from studies.models import Study


class IsResearcher(permissions.BasePermission):
    """Any signed-in, active researcher account (not a coder-only one); what it may touch is
    decided by studies.access."""

    message = "Sign in first, with a researcher account."

    def has_permission(self, request, view) -> bool:
        return access.is_researcher(request.user)


def study_for(request: Request, slug: str, action: Action = Action.VIEW) -> Study:
    """The study in the URL if the caller may do ``action``: 404 if they cannot see it, 403 if
    their role is too low (DRF turns Django's Http404 and PermissionDenied into those)."""
    return access.study_for(request.user, slug, action)


class ProblemSerializer(serializers.Serializer):
    path = serializers.CharField(help_text="Where the problem is, e.g. questions[2].scale.points")
    line = serializers.IntegerField(
        required=False, allow_null=True, help_text="The line, for a spec sent as YAML."
    )
    message = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The body of every refusal: a message, and the problems or reasons behind it; a form's
    field errors come as ``{"field": ["message", ...]}`` instead."""

    detail = serializers.CharField(required=False)
    problems = ProblemSerializer(many=True, required=False)
    reasons = serializers.ListField(child=serializers.CharField(), required=False)


class Conflict(APIException):
    """The study's state does not allow this now (e.g. editing a live study's design)."""

    status_code = status.HTTP_409_CONFLICT
    default_detail = "The study's state does not allow this."
    default_code = "conflict"


class ProblemsError(APIException):
    """Bad input with several problems; the body keeps its types (a line stays a number)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, body: dict) -> None:
        # Not APIException.__init__: it would turn every value into a string.
        self.detail = body


def problems_error(detail: str, problems: list[dict]) -> ProblemsError:
    return ProblemsError({"detail": detail, "problems": problems})


@contextmanager
def service_errors() -> Iterator[None]:
    """Turn the services' refusals into 400/409 answers whose message says what to do."""
    try:
        yield
    except LaunchRefused as exc:
        raise Conflict({"detail": "the study cannot be launched", "reasons": exc.reasons}) from exc
    except StudyStateError as exc:
        raise Conflict({"detail": str(exc)}) from exc
    except IntegrityError as exc:  # a race with another request creating the same name
        raise ValidationError(
            {"detail": "this conflicts with something just saved; retry"}
        ) from exc
    except ValueError as exc:
        raise ValidationError({"detail": str(exc)}) from exc


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """Schema entries for the refusals an endpoint can answer with."""
    described = {
        400: "Bad input; nothing was changed.",
        403: "Your role in the study does not allow this.",
        404: "No such study (or not one you can see).",
        409: "The study's state does not allow this now.",
    }
    return {code: OpenApiResponse(ErrorSerializer, description=described[code]) for code in codes}


class DetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


LIST_ERRORS = {400: "A filter's value is not one of its choices.", 404: "No such page (or study)."}


def list_schema(serializer_class) -> dict:
    """extend_schema_view arguments for a paginated list that may answer 400 or 404."""
    return {
        "get": extend_schema(
            responses={
                200: serializer_class(many=True),
                **{
                    code: OpenApiResponse(ErrorSerializer, description=text)
                    for code, text in LIST_ERRORS.items()
                },
            }
        )
    }
