"""Fixtures for stimuli and review pages: a draft seed study with members of every role."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.models import ResponseVariant, StudyMembership


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def people(db) -> dict:
    users = get_user_model().objects
    return {
        name: users.create_user(name, password=f"pw-{name}-123")
        for name in ("owner", "editor", "viewer", "stranger")
    }


def add_members(study, people) -> None:
    for role in ("owner", "editor", "viewer"):
        StudyMembership.objects.create(study=study, user=people[role], role=role)


@pytest.fixture
def study(make_study, people):
    """The seed example study as a draft: 16 queries, every type imported and approved."""
    study = make_study(launch=False)
    add_members(study, people)
    return study


@pytest.fixture
def staging(settings, tmp_path):
    settings.STIMULI_UPLOAD_DIR = tmp_path / "uploads"
    return settings.STIMULI_UPLOAD_DIR


def generated_variant(study, query_id: str, response_type: str, model: str, **extra):
    query = study.queries.get(query_id=query_id)
    return ResponseVariant.objects.create(
        query=query,
        response_type=response_type,
        model_name=model,
        text=extra.pop("text", f"{model} wrote this {response_type} for {query_id}."),
        source=ResponseVariant.Source.GENERATED,
        review_status=ResponseVariant.ReviewStatus.GENERATED,
        provenance={
            "model": model,
            "backend": "openai",
            "job": 7,
            "params": {"temperature": 0.3, "max_tokens": 256, "seed": 11, "mode": "per_type"},
            "prompt": [{"role": "system", "content": "Answer as a redirection."}],
            "latency_ms": 812,
            "completion_tokens": 40,
            "generated_at": "2026-11-20T10:00:00+00:00",
        },
        **extra,
    )
