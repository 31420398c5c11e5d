"""A study with questionnaire blocks and a few participants who answered them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from studies.models import StudyMembership
from tests.annotation.block_fixtures import GOOD_AFTER, GOOD_BEFORE, add_blocks, take_part


@pytest.fixture
def answered(make_study):
    """Four participants: two completed (one left the optional comment empty), one still in
    the items after the before block, one declined."""
    study = make_study(target_participants=4)
    add_blocks(study)
    take_part(
        Client(),
        study,
        "PID-SECRET-1",
        before=GOOD_BEFORE,
        after={"ai_trust": "5", "comment": 'ok; "fine", thanks'},
    )
    take_part(Client(), study, "PID-SECRET-2", before=GOOD_BEFORE, after=GOOD_AFTER)
    # Stops after the before block: take_part answers items only up to the after block.
    in_progress = Client()
    from tests.annotation.test_views import start

    response = start(in_progress, study, pid="PID-SECRET-3")
    in_progress.post(
        response.request["PATH_INFO"],
        {"age_group": "45 or older", "ai_tools": "Other; none of these", "chatbot_days": "0.5"},
    )
    declined = Client()
    declined.get(f"/s/{study.slug}/?PROLIFIC_PID=PID-SECRET-4")
    declined.post(f"/s/{study.slug}/consent/", {"decision": "decline"})
    return study


@pytest.fixture
def researchers(answered):
    users = get_user_model().objects
    owner = users.create_user("owner", password="x")
    viewer = users.create_user("viewer", password="x")
    users.create_user("stranger", password="x")
    StudyMembership.objects.create(study=answered, user=owner, role="owner")
    StudyMembership.objects.create(study=answered, user=viewer, role="viewer")

    def client_for(username: str | None) -> Client:
        client = Client()
        if username:
            client.force_login(users.get(username=username))
        return client

    return client_for
