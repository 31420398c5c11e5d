"""Reviewing texts in the browser: the filtered table, approve, reject, edit, bulk approve."""

from __future__ import annotations

import re

import pytest

from studies.errors import StudyStateError
from studies.generation import services as generation_services
from studies.models import AuditEvent, ResponseVariant
from tests.review.conftest import add_members, client_for, generated_variant

pytestmark = pytest.mark.django_db


def shown(html: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'<tr id="variant-(\d+)"', html)}


def approved(study, query_id: str, response_type: str) -> list[ResponseVariant]:
    return list(
        ResponseVariant.objects.filter(
            query__study=study,
            query__query_id=query_id,
            response_type=response_type,
            review_status="approved",
        )
    )


def imported(study, query_id: str, response_type: str) -> ResponseVariant:
    return ResponseVariant.objects.get(
        query__study=study, query__query_id=query_id, response_type=response_type, model_name=""
    )


@pytest.fixture
def texts(study):
    """Two models' redirections of q01 and one full compliance of q02, awaiting review."""
    return {
        "a": generated_variant(study, "q01", "redirection", "model-a"),
        "b": generated_variant(study, "q01", "redirection", "model-b"),
        "c": generated_variant(study, "q02", "full_compliance", "model-a"),
    }


def test_review_table_shows_texts_with_provenance(study, people, texts):
    html = client_for(people["viewer"]).get(f"/studies/{study.slug}/review/").content.decode()
    assert "Review texts</h1>" in html
    row = html.split(f'id="variant-{texts["a"].pk}"')[1].split("</tr>")[0]
    assert "model-a wrote this redirection for q01." in row
    for detail in ("temperature=0.3", "max_tokens=256", "seed=11", "812 ms", "2026-11-20", "Job"):
        assert detail in row
    assert "Answer as a redirection." in row  # the prompt
    assert "awaiting review" in row
    # 16 queries x 5 imported types + 3 generated, 25 per page.
    assert "Page 1 of 4 (83 in all)" in html


def test_filters_narrow_the_table(study, people, texts):
    client = client_for(people["viewer"])
    url = f"/studies/{study.slug}/review/"
    generated = shown(client.get(url, {"status": "generated"}).content.decode())
    assert generated == {t.pk for t in texts.values()}
    by_model = shown(client.get(url, {"model": "model-b"}).content.decode())
    assert by_model == {texts["b"].pk}
    both = client.get(url, {"status": "generated", "response_type": "full_compliance"})
    assert shown(both.content.decode()) == {texts["c"].pk}
    category = texts["c"].query.category
    page = client.get(url, {"category": category, "status": "generated"})
    in_category = shown(page.content.decode())
    assert in_category == {texts["c"].pk} | (
        {texts["a"].pk, texts["b"].pk} if texts["a"].query.category == category else set()
    )
    imported_only = client.get(url, {"model": "-", "q": "q01"}).content.decode()
    assert len(shown(imported_only)) == 5
    assert not shown(imported_only) & {t.pk for t in texts.values()}


def test_filters_keep_working_after_the_api_schema_built_the_class_fields(study, people, texts):
    """The schema generator builds the FilterSet class's fields once (with no choices); the
    page's filters must still see this study's categories and models afterwards."""
    from studies.review import ReviewFilter

    for filter_ in ReviewFilter.base_filters.values():
        filter_.field  # noqa: B018 - what drf-spectacular does when it describes the API
    client = client_for(people["viewer"])
    url = f"/studies/{study.slug}/review/"
    assert shown(client.get(url, {"model": "model-b"}).content.decode()) == {texts["b"].pk}
    category = texts["c"].query.category
    in_category = shown(client.get(url, {"category": category}).content.decode())
    assert texts["c"].pk in in_category
    assert not ResponseVariant.objects.filter(pk__in=in_category).exclude(query__category=category)


def test_launch_problems_are_listed_at_the_top(study, people, texts):
    client = client_for(people["editor"])
    html = client.get(f"/studies/{study.slug}/review/").content.decode()
    assert "Nothing in the texts blocks the launch." in html
    ResponseVariant.objects.filter(
        query__study=study, query__query_id="q03", response_type="direct_refusal"
    ).update(review_status="rejected")
    html = client.get(f"/studies/{study.slug}/review/").content.decode()
    assert "Before this study can launch" in html
    assert "query q03 has no approved response for: direct_refusal" in html


def test_approve_makes_it_the_only_approved_text_of_its_pair(study, people, texts):
    client = client_for(people["editor"])
    back = f"/studies/{study.slug}/review/?status=generated&page=1"
    response = client.post(f"/studies/{study.slug}/review/{texts['a'].pk}/approve/", {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert approved(study, "q01", "redirection") == [texts["a"]]
    assert imported(study, "q01", "redirection").review_status == "rejected"
    texts["b"].refresh_from_db()
    assert texts["b"].review_status == "generated"
    event = AuditEvent.objects.get(study=study, action="response_approved")
    assert event.actor == people["editor"] and event.detail == {"variant": texts["a"].pk}


def test_reject_keeps_the_text_away_and_is_audited(study, people, texts):
    client = client_for(people["editor"])
    target = imported(study, "q04", "partial_compliance")
    client.post(f"/studies/{study.slug}/review/{target.pk}/reject/")
    target.refresh_from_db()
    assert target.review_status == "rejected"
    event = AuditEvent.objects.get(study=study, action="response_rejected")
    assert event.detail == {"variant": target.pk, "old": "approved"}
    html = client.get(f"/studies/{study.slug}/review/").content.decode()
    assert "query q04 has no approved response for: partial_compliance" in html


def test_edit_page_saves_keeps_history_and_can_approve(study, people, texts):
    client = client_for(people["editor"])
    url = f"/studies/{study.slug}/review/{texts['a'].pk}/edit/"
    page = client.get(url, {"next": f"/studies/{study.slug}/review/?model=model-a"})
    assert page.status_code == 200
    assert "model-a wrote this redirection for q01." in page.content.decode()
    assert "Not edited yet" in page.content.decode()
    response = client.post(
        url,
        {
            "text": "A gentler redirection.",
            "approve": "on",
            "next": f"/studies/{study.slug}/review/?model=model-a",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/studies/{study.slug}/review/?model=model-a"
    texts["a"].refresh_from_db()
    assert texts["a"].text == "A gentler redirection."
    assert texts["a"].review_status == "approved"
    edits = texts["a"].provenance["edits"]
    assert [e["previous_text"] for e in edits] == ["model-a wrote this redirection for q01."]
    assert edits[0]["by"] == "editor"
    assert texts["a"].provenance["model"] == "model-a"  # the provenance itself stays
    client.post(url, {"text": "A third version."})
    history = client.get(url).content.decode().split("<h2>History</h2>")[1]
    assert history.index("A gentler redirection.") < history.index(
        "model-a wrote this redirection for q01."
    )
    actions = list(
        AuditEvent.objects.filter(study=study).order_by("pk").values_list("action", flat=True)
    )
    assert actions[-3:] == ["response_edited", "response_approved", "response_edited"]


def test_empty_edit_is_refused_next_to_the_field(study, people, texts):
    client = client_for(people["editor"])
    response = client.post(f"/studies/{study.slug}/review/{texts['a'].pk}/edit/", {"text": "   "})
    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    texts["a"].refresh_from_db()
    assert texts["a"].text == "model-a wrote this redirection for q01."
    assert not AuditEvent.objects.filter(study=study, action="response_edited").exists()


def test_bulk_approve_approves_the_selection(study, people, texts):
    client = client_for(people["editor"])
    response = client.post(
        f"/studies/{study.slug}/review/approve/", {"variant": [texts["a"].pk, texts["c"].pk]}
    )
    assert response.status_code == 302
    assert approved(study, "q01", "redirection") == [texts["a"]]
    assert approved(study, "q02", "full_compliance") == [texts["c"]]
    texts["b"].refresh_from_db()
    assert texts["b"].review_status == "generated"
    assert AuditEvent.objects.filter(study=study, action="response_approved").count() == 2
    page = client.get(response["Location"]).content.decode()
    assert "Approved 2 text(s)." in page


def test_bulk_approve_of_two_texts_of_one_pair_changes_nothing(study, people, texts):
    client = client_for(people["editor"])
    response = client.post(
        f"/studies/{study.slug}/review/approve/",
        {"variant": [texts["a"].pk, texts["b"].pk, texts["c"].pk]},
        follow=True,
    )
    assert "Nothing was approved: two texts selected for query q01" in response.content.decode()
    assert approved(study, "q01", "redirection") == [imported(study, "q01", "redirection")]
    assert approved(study, "q02", "full_compliance") == [imported(study, "q02", "full_compliance")]
    assert not AuditEvent.objects.filter(study=study, action="response_approved").exists()


def test_bulk_approve_refuses_texts_of_another_study(study, people, texts, make_study):
    other = make_study(launch=False, slug="other-study")
    foreign = generated_variant(other, "q01", "redirection", "model-a")
    client_for(people["editor"]).post(
        f"/studies/{study.slug}/review/approve/", {"variant": [texts["a"].pk, foreign.pk]}
    )
    foreign.refresh_from_db()
    texts["a"].refresh_from_db()
    assert foreign.review_status == texts["a"].review_status == "generated"


def test_a_text_of_another_study_is_not_found(study, people, make_study):
    other = make_study(launch=False, slug="other-study")
    foreign = generated_variant(other, "q01", "redirection", "model-a")
    client = client_for(people["owner"])
    for action in ("approve", "reject"):
        url = f"/studies/{study.slug}/review/{foreign.pk}/{action}/"
        assert client.post(url).status_code == 404
    assert client.get(f"/studies/{study.slug}/review/{foreign.pk}/edit/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.review_status == "generated"


def test_next_may_not_leave_the_site(study, people, texts):
    response = client_for(people["editor"]).post(
        f"/studies/{study.slug}/review/{texts['a'].pk}/approve/",
        {"next": "https://evil.example/phish"},
    )
    assert response["Location"] == f"/studies/{study.slug}/review/"


def test_viewer_reads_but_may_not_write(study, people, texts):
    client = client_for(people["viewer"])
    html = client.get(f"/studies/{study.slug}/review/").content.decode()
    assert "Approve selected" not in html and "/approve/" not in html and "/reject/" not in html
    pk = texts["a"].pk
    assert client.post(f"/studies/{study.slug}/review/{pk}/approve/").status_code == 403
    assert client.post(f"/studies/{study.slug}/review/{pk}/reject/").status_code == 403
    bulk = client.post(f"/studies/{study.slug}/review/approve/", {"variant": [pk]})
    assert bulk.status_code == 403
    edit = f"/studies/{study.slug}/review/{pk}/edit/"
    assert client.get(edit).status_code == 403
    assert client.post(edit, {"text": "Viewer text."}).status_code == 403
    texts["a"].refresh_from_db()
    assert texts["a"].review_status == "generated"
    assert texts["a"].text != "Viewer text."
    assert not AuditEvent.objects.filter(study=study, action__startswith="response_").exists()


def test_strangers_and_anonymous_get_nothing(study, people, texts):
    stranger = client_for(people["stranger"])
    pk = texts["a"].pk
    assert stranger.get(f"/studies/{study.slug}/review/").status_code == 404
    assert stranger.post(f"/studies/{study.slug}/review/{pk}/approve/").status_code == 404
    assert stranger.get(f"/studies/{study.slug}/review/{pk}/edit/").status_code == 404
    from django.test import Client

    anonymous = Client().get(f"/studies/{study.slug}/review/")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    texts["a"].refresh_from_db()
    assert texts["a"].review_status == "generated"


def test_texts_of_a_live_study_are_read_only(make_study, people):
    live = make_study(target_participants=4)
    add_members(live, people)
    variant = imported(live, "q01", "redirection")
    rejected = generated_variant(live, "q01", "redirection", "model-a")
    client = client_for(people["owner"])
    html = client.get(f"/studies/{live.slug}/review/").content.decode()
    assert "its texts are read-only. Duplicate the study" in html
    assert "Approve selected" not in html and "/approve/" not in html
    response = client.post(f"/studies/{live.slug}/review/{rejected.pk}/approve/", follow=True)
    assert "Duplicate the study to make a new version" in response.content.decode()
    client.post(f"/studies/{live.slug}/review/{variant.pk}/reject/")
    client.post(f"/studies/{live.slug}/review/approve/", {"variant": [rejected.pk]})
    edit = client.post(f"/studies/{live.slug}/review/{variant.pk}/edit/", {"text": "Changed."})
    assert edit.status_code == 400
    assert "read-only" in edit.content.decode()
    variant.refresh_from_db()
    rejected.refresh_from_db()
    assert (variant.review_status, variant.text) != ("rejected", "Changed.")
    assert variant.review_status == "approved" and rejected.review_status == "generated"
    assert "edits" not in variant.provenance
    assert not AuditEvent.objects.filter(study=live, action__startswith="response_").exists()
    for call in (
        lambda: generation_services.approve_variant(variant=rejected),
        lambda: generation_services.reject_variant(variant=variant),
        lambda: generation_services.edit_variant(variant=variant, text="x"),
        lambda: generation_services.approve_variants(study=live, variant_ids=[rejected.pk]),
    ):
        with pytest.raises(StudyStateError, match="Duplicate the study"):
            call()


def test_edit_page_links_back_only_within_the_site(study, people, texts):
    url = f"/studies/{study.slug}/review/{texts['a'].pk}/edit/"
    page = client_for(people["editor"]).get(url, {"next": "javascript:alert(1)"})
    assert "javascript:" not in page.content.decode()
