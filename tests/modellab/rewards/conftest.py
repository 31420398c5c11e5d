"""Fixtures of the reward-scoring tests: inline tasks, the loopback chat server, a researcher."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from studies.models import StudyMembership
from tests.browser.conftest import browser  # noqa: F401 - fixture
from tests.generation.conftest import chat_server, eager_tasks  # noqa: F401 - fixtures


@pytest.fixture
def researcher(db):
    return get_user_model().objects.create_user("rita", password="pw-rita-123456")


@pytest.fixture
def owned_study(make_study, researcher):
    """The seed study, not launched, owned by ``researcher``."""
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=researcher, role="owner")
    return study
