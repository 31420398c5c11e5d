"""Fixtures of the API tests: researchers with tokens, and a study one of them owns."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from studies.models import StudyMembership


@dataclass
class People:
    owner: object
    editor: object
    viewer: object
    other: object
    root: object


def api_for(user) -> APIClient:
    """A client that authenticates as the API's users do: with a token."""
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def people(db) -> People:
    users = get_user_model().objects
    return People(
        owner=users.create_user("ada", email="ada@example.org", password="pw-ada-123"),
        editor=users.create_user("eve", email="eve@example.org", password="pw-eve-123"),
        viewer=users.create_user("vic", email="vic@example.org", password="pw-vic-123"),
        other=users.create_user("bob", email="bob@example.org", password="pw-bob-123"),
        root=users.create_superuser("root", email="root@example.org", password="pw-root-123"),
    )


@pytest.fixture
def draft(make_study, people):
    """The seed study as a draft (stimuli imported, texts approved), with ada, eve and vic."""
    study = make_study(launch=False)
    for user, role in (
        (people.owner, "owner"),
        (people.editor, "editor"),
        (people.viewer, "viewer"),
    ):
        StudyMembership.objects.create(study=study, user=user, role=role)
    return study
