"""The model lab's front page: reachable from the navigation, listing only the reader's studies."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from studies.models import StudyMembership

pytestmark = pytest.mark.django_db


def test_lab_page_lists_only_own_studies_with_their_lab_pages(client, make_study):
    users = get_user_model().objects
    ada = users.create_user("ada", password="pw-ada-123")
    bob = users.create_user("bob", password="pw-bob-123")
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=ada, role="viewer")

    client.force_login(ada)
    page = client.get("/lab/").content.decode()
    assert 'href="/lab/"' in page and 'aria-current="page">Model lab' in page
    assert f'href="/studies/{study.slug}/lab/behaviour/"' in page
    assert f'href="/studies/{study.slug}/lab/rewards/"' in page
    assert 'href="/lab/false-refusal/"' in page
    assert 'href="/coding/"' in page and 'href="/code/"' in page

    client.force_login(bob)
    page = client.get("/lab/").content.decode()
    assert study.slug not in page and "You have no studies yet." in page


def test_lab_page_asks_for_login(client):
    response = client.get("/lab/")
    assert response.status_code == 302 and "/login" in response["Location"]
