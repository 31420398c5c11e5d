"""Fixtures for stimuli export: the seed example as a draft study with members of every role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.models import StudyMembership


@pytest.fixture
def people(db) -> dict:
    users = get_user_model().objects
    return {
        name: users.create_user(name, password=f"pw-{name}-123")
        for name in ("owner", "viewer", "stranger")
    }


@pytest.fixture
def study(make_study, people):
    """The seed example as a draft: 16 queries, every type imported and approved."""
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=people["owner"], role="owner")
    StudyMembership.objects.create(study=study, user=people["viewer"], role="viewer")
    return study


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
