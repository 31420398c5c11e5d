"""Researchers with each role in a study, and logged-in clients for them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.models import StudyMembership


@pytest.fixture
def people(db) -> dict:
    users = get_user_model().objects
    return {
        role: users.create_user(role, password=f"pw-{role}-123")
        for role in ("owner", "editor", "viewer", "stranger")
    }


@pytest.fixture
def with_roles(people):
    """Give the owner, editor and viewer their roles in ``study``; returns the study."""

    def give(study):
        for role in ("owner", "editor", "viewer"):
            StudyMembership.objects.create(study=study, user=people[role], role=role)
        return study

    return give


@pytest.fixture
def client_for(people):
    def make(role: str) -> Client:
        client = Client()
        if role != "anonymous":
            client.force_login(people[role])
        return client

    return make
