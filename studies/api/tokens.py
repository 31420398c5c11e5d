"""REST API sign-in: a token for a username and password (DRF's obtain_auth_token)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken

from studies.api.common import ErrorSerializer


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it as 'Authorization: Token <token>'.")


class TokenView(ObtainAuthToken):
    @extend_schema(
        responses={
            200: TokenSerializer,
            400: OpenApiResponse(ErrorSerializer, description="Wrong username or password."),
        },
        auth=[],
    )
    def post(self, request, *args, **kwargs):
        """Your API token (the same one on every call until an administrator revokes it)."""
        return super().post(request, *args, **kwargs)
