"""The researchers' participants table: filters, pagination, and what each role is offered."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.models import Participant
from studies.models import StudyMembership

pytestmark = pytest.mark.django_db

FLAG = [
    {"rule": "straight_lining", "reason": "answered 4 to every question of 4 consecutive items"}
]


def signed_in(study, role: str) -> Client:
    user = get_user_model().objects.create_user(f"{role}-p", password=f"pw-{role}-123")
    StudyMembership.objects.create(study=study, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="participant-(\d+)"', html)


def test_filters_and_pages(make_study):
    study = make_study(target_participants=2)
    for i in range(53):
        Participant.objects.create(study=study, pseudonym=f"done-{i:03d}", status="completed")
    flagged = Participant.objects.create(
        study=study, pseudonym="flagged-1", status="completed", flags=FLAG, excluded=True
    )
    Participant.objects.create(study=study, pseudonym="gone-1", status="timed_out")
    client = signed_in(study, "viewer")
    url = f"/studies/{study.slug}/participants/"
    first = client.get(url).content.decode()
    assert "55 participants." in first and len(rows(first)) == 50
    assert 'href="?page=2"' in first
    second = client.get(url + "?page=2").content.decode()
    assert len(rows(second)) == 5
    timed_out = client.get(url + "?status=timed_out").content.decode()
    assert len(rows(timed_out)) == 1 and "1 participant." in timed_out
    by_rule = client.get(url + "?flag=straight_lining").content.decode()
    assert rows(by_rule) == [str(flagged.pk)]
    assert "answered 4 to every question of 4 consecutive items" in by_rule
    # Filters keep across pages, and unknown values are ignored rather than failing.
    page_two = client.get(url + "?status=completed&page=2").content.decode()
    assert 'href="?status=completed&amp;page=1"' in page_two
    assert len(rows(client.get(url + "?status=nonsense&flag=%3Cx%3E").content.decode())) == 50


def test_viewers_see_no_decision_forms_editors_do(make_study):
    study = make_study(target_participants=2)
    Participant.objects.create(
        study=study, pseudonym="flagged-2", status="completed", flags=FLAG, excluded=True
    )
    url = f"/studies/{study.slug}/participants/"
    viewer_page = signed_in(study, "viewer").get(url).content.decode()
    assert "Reason to keep" not in viewer_page and "Run quality checks" not in viewer_page
    editor_page = signed_in(study, "editor").get(url).content.decode()
    assert "Reason to keep" in editor_page and "Confirm exclusion" in editor_page
    assert "Run quality checks" in editor_page and "Confirm all 1 flagged" in editor_page
