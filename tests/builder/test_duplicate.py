"""Duplicating a study: a new draft with the design and the stimuli, owned by the duplicator."""

from __future__ import annotations

import pytest

from annotation.models import Slot
from studies import selectors
from studies.models import AuditEvent, ResponseVariant, Scenario, Study, StudyMembership
from studies.spec import spec_dict
from tests.builder.conftest import errors_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def live_study(make_study, users):
    study = make_study(target_participants=8)
    StudyMembership.objects.create(study=study, user=users["owner"], role="owner")
    StudyMembership.objects.create(study=study, user=users["viewer"], role="viewer")
    # One text awaiting review and one rejected: neither is part of the copy.
    variants = ResponseVariant.objects.filter(query__study=study).order_by("pk")
    pending, rejected = variants[0], variants[1]
    ResponseVariant.objects.filter(pk=pending.pk).update(
        review_status=ResponseVariant.ReviewStatus.GENERATED,
        source=ResponseVariant.Source.GENERATED,
    )
    ResponseVariant.objects.filter(pk=rejected.pk).update(
        review_status=ResponseVariant.ReviewStatus.REJECTED
    )
    return study


def test_duplicate_makes_a_draft_with_design_and_stimuli_owned_by_the_duplicator(
    clients, users, live_study
):
    source = live_study
    url = f"/studies/{source.slug}/duplicate/"
    page = clients["viewer"].get(url).content.decode()
    data = {"slug": f"{source.slug}-copy", "title": ""}
    assert f'value="{source.slug}-copy"' in page
    response = clients["viewer"].post(url, data)
    assert response.status_code == 302
    copy = Study.objects.get(slug=f"{source.slug}-copy")
    assert response["Location"] == f"/studies/{copy.slug}/design/"
    assert copy.status == Study.Status.DRAFT
    assert copy.duplicated_from == source
    assert list(copy.memberships.values_list("user__username", "role")) == [("viewer", "owner")]
    assert copy.pseudonym_salt != source.pseudonym_salt
    # The design is the same, but for the slug.
    expected = spec_dict(selectors.study_spec(source))
    expected["slug"] = copy.slug
    assert spec_dict(selectors.study_spec(copy)) == expected
    # Queries and scenarios are all copied; texts only when approved (or written by hand).
    assert copy.queries.count() == source.queries.count()
    assert (
        Scenario.objects.filter(query__study=copy).count()
        == Scenario.objects.filter(query__study=source).count()
    )
    approved = ResponseVariant.objects.filter(
        query__study=source, review_status=ResponseVariant.ReviewStatus.APPROVED
    )
    copied = ResponseVariant.objects.filter(query__study=copy)
    assert copied.count() == approved.count()
    assert set(copied.values_list("query__query_id", "response_type", "text")) == set(
        approved.values_list("query__query_id", "response_type", "text")
    )
    assert not Slot.objects.filter(study=copy).exists()
    # An audit row on both studies; the source is unchanged and still live.
    assert AuditEvent.objects.filter(
        study=copy, action="study_duplicated_from", actor=users["viewer"]
    ).exists()
    assert AuditEvent.objects.filter(
        study=source, action="study_duplicated", actor=users["viewer"], detail__copy=copy.slug
    ).exists()
    source.refresh_from_db()
    assert source.status == Study.Status.LIVE
    # The new draft's design can be edited right away.
    assert clients["viewer"].get(f"/studies/{copy.slug}/design/metadata/").status_code == 200


def test_the_suggested_slug_is_unique_and_a_clash_is_shown_at_the_slug(clients, live_study):
    url = f"/studies/{live_study.slug}/duplicate/"
    assert clients["owner"].post(url, {"slug": f"{live_study.slug}-copy"}).status_code == 302
    page = clients["owner"].get(url).content.decode()
    assert f'value="{live_study.slug}-copy-2"' in page
    before = Study.objects.count()
    response = clients["owner"].post(url, {"slug": f"{live_study.slug}-copy"})
    assert response.status_code == 400
    assert "exists already" in errors_of(response.content.decode(), "slug")
    assert Study.objects.count() == before


def test_duplicate_needs_a_role_in_the_source(clients, live_study):
    url = f"/studies/{live_study.slug}/duplicate/"
    assert clients["other"].get(url).status_code == 404
    assert clients["other"].post(url, {"slug": "stolen"}).status_code == 404
    assert not Study.objects.filter(slug="stolen").exists()
