"""Researcher pages: login required, and each researcher sees only their own studies."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation import services as annotation_services
from studies.models import StudyMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_and_stranger(make_study):
    users = get_user_model().objects
    owner = users.create_user("owner", password="pw-owner-123", is_staff=True)
    stranger = users.create_user("stranger", password="pw-stranger-123", is_staff=True)
    study = make_study(target_participants=8)
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    return study, owner, stranger


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_pages_require_login(owner_and_stranger):
    study, _, _ = owner_and_stranger
    for url in ("/studies/", f"/studies/{study.slug}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert "/accounts/login/" in response["Location"]


def test_owner_sees_progress_of_their_study(owner_and_stranger):
    study, owner, _ = owner_and_stranger
    participant = annotation_services.join_study(study=study, external_id="p1", recruitment={})
    annotation_services.give_consent(participant=participant)
    page = logged_in(owner).get(f"/studies/{study.slug}/").content.decode()
    assert study.title in page
    assert "refusal_strategy=direct_refusal" in page
    assert "PROLIFIC_PID={{%PROLIFIC_PID%}}" in page
    listing = logged_in(owner).get("/studies/").content.decode()
    assert study.slug in listing


def test_other_researchers_cannot_see_the_study(owner_and_stranger):
    study, _, stranger = owner_and_stranger
    client = logged_in(stranger)
    assert client.get(f"/studies/{study.slug}/").status_code == 404
    assert study.slug not in client.get("/studies/").content.decode()


def test_admin_is_closed_to_researchers_even_with_model_permissions(owner_and_stranger):
    """Researchers work in the platform's pages; the admin is for superusers only."""
    study, owner, stranger = owner_and_stranger
    from django.contrib.auth.models import Permission

    for user in (owner, stranger):
        user.is_staff = True
        user.save()
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="studies"))
        response = logged_in(user).get(f"/admin/studies/study/{study.pk}/change/")
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
