"""Who may read and change a design in the builder, and that a live study's design is frozen."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from studies import selectors
from studies.models import StudyMembership
from studies.spec import spec_dict
from tests.builder.conftest import form_data

pytestmark = pytest.mark.django_db

SECTIONS = ("metadata", "texts", "design", "questions", "attention", "recruitment", "analysis")


def page_urls(slug: str) -> list[str]:
    return [
        f"/studies/{slug}/design/",
        *(f"/studies/{slug}/design/{s}/" for s in SECTIONS),
        f"/studies/{slug}/design/blocks/",
        f"/studies/{slug}/spec.yaml",
        f"/studies/{slug}/plan/",
        f"/studies/{slug}/duplicate/",
    ]


def test_a_viewer_reads_every_page_read_only_and_cannot_post(clients, new_study):
    study = new_study()
    before = spec_dict(selectors.study_spec(study))
    viewer, owner = clients["viewer"], clients["owner"]
    for url in page_urls(study.slug):
        assert viewer.get(url).status_code == 200, url
    for section in SECTIONS:
        url = f"/studies/{study.slug}/design/{section}/"
        page = viewer.get(url).content.decode()
        assert '<fieldset class="builder-section" disabled>' in page
        assert 'name="save"' not in page
        assert "lets you read its design, not change it" in page
        data = form_data(owner.get(url).content.decode())
        data["save"] = ""
        assert viewer.post(url, data).status_code == 403, url
    block_url = f"/studies/{study.slug}/design/blocks/new-block/"
    assert viewer.post(block_url, {"key": "x"}).status_code == 403
    study.refresh_from_db()
    assert spec_dict(selectors.study_spec(study)) == before


def test_another_researcher_gets_404_everywhere(clients, new_study):
    study = new_study()
    other = clients["other"]
    for url in page_urls(study.slug):
        assert other.get(url).status_code == 404, url
        assert other.post(url, {"save": ""}).status_code == 404, url


def test_anonymous_visitors_are_sent_to_the_login(new_study):
    study = new_study()
    for url in page_urls(study.slug):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url


def test_a_live_study_shows_its_design_read_only_and_refuses_edits(clients, users, make_study):
    study = make_study(target_participants=8)  # launched
    StudyMembership.objects.create(study=study, user=users["owner"], role="owner")
    client = clients["owner"]
    before = spec_dict(selectors.study_spec(study))
    url = f"/studies/{study.slug}/design/metadata/"
    page = html.unescape(client.get(url).content.decode())
    assert "The design of a live study can't change: duplicate it to make a new version." in page
    assert '<fieldset class="builder-section" disabled>' in page
    assert f'href="/studies/{study.slug}/duplicate/"' in page
    data = form_data(page)
    data.update({"title": "Changed", "save": ""})
    response = client.post(url, data)
    assert response.status_code == 409
    assert "duplicate it to make a new version" in html.unescape(response.content.decode())
    study.refresh_from_db()
    assert spec_dict(selectors.study_spec(study)) == before
    # The overview and the download still work.
    assert client.get(f"/studies/{study.slug}/design/").status_code == 200
    assert client.get(f"/studies/{study.slug}/spec.yaml").status_code == 200
