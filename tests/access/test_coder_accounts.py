"""An account made to code (the coder group) codes its tasks and reaches nothing else."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from studies.models import LanguageModel, Study
from tests.api.conftest import api_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def coder():
    user = get_user_model().objects.create_user("cora", password="pw-cora-123")
    user.groups.add(Group.objects.get_or_create(name="coder")[0])
    return user


@pytest.mark.parametrize(
    "path", ["/studies/", "/studies/new/", "/models/", "/lab/", "/lab/false-refusal/"]
)
def test_researcher_pages_are_not_found_for_a_coder(client, coder, path):
    client.force_login(coder)
    assert client.get(path).status_code == 404


def test_a_coder_creates_no_study_and_registers_no_model(client, coder):
    client.force_login(coder)
    new_study = client.post("/studies/new/", {"source": "start", "start-title": "Mine"})
    new_model = client.post("/models/", {"name": "m", "backend": "openai"})
    assert new_study.status_code == new_model.status_code == 404
    api = api_for(coder)
    assert api.get("/api/studies/").status_code == 403
    assert api.post("/api/studies/", {"title": "Mine"}, format="json").status_code == 403
    assert not Study.objects.exists() and not LanguageModel.objects.exists()


def test_a_coder_still_reaches_their_coding_pages(client, coder):
    client.force_login(coder)
    assert client.get("/code/").status_code == 200
