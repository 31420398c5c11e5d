"""The admin: superusers only, and every write that needs a service goes through it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from annotation.models import Participant, Slot
from annotation.services import exclude_participant, give_consent, join_study
from studies.models import AuditEvent, LanguageModel, Query, Study, StudyMembership

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(make_study):
    users = get_user_model().objects
    ada = users.create_user("ada", password="pw-ada-123")
    bob = users.create_user("bob", password="pw-bob-123")
    root = users.create_superuser("root", password="pw-root-123")
    live = make_study()  # launched
    StudyMembership.objects.create(study=live, user=ada, role="owner")
    return live, ada, bob, root


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def query_form(study: Study) -> dict:
    return {
        "study": study.pk,
        "query_id": "q99",
        "text": "injected",
        "category": "x",
        "scenarios-TOTAL_FORMS": "0",
        "scenarios-INITIAL_FORMS": "0",
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
    }


def test_a_researcher_posting_the_admin_add_form_for_a_query_stores_nothing(setup):
    live, ada, bob, _root = setup
    for user in (bob, ada):  # another researcher's study, and even one's own
        response = login(user).post("/admin/studies/query/add/", query_form(live))
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert not Query.objects.filter(query_id="q99").exists()


def test_a_live_studys_design_is_read_only_even_for_a_superuser(setup):
    live, _ada, _bob, root = setup
    admin = login(root)
    # The add form offers only studies whose design is open: a live one is not a valid choice.
    response = admin.post("/admin/studies/query/add/", query_form(live))
    assert response.status_code == 200 and b"Select a valid choice" in response.content
    assert not Query.objects.filter(query_id="q99").exists()
    page = admin.get(f"/admin/studies/study/{live.pk}/change/").content.decode()
    assert 'name="title"' not in page and 'name="consent_md"' not in page
    before = Study.objects.values().get(pk=live.pk)
    admin.post(f"/admin/studies/study/{live.pk}/change/", {"title": "changed", "status": "draft"})
    assert Study.objects.values().get(pk=live.pk) == before
    query = live.queries.first()
    assert (
        admin.post(f"/admin/studies/query/{query.pk}/change/", {"text": "changed"}).status_code
        == 403
    )


def test_a_study_created_in_the_admin_belongs_to_its_creator(setup):
    _live, _ada, _bob, root = setup
    response = login(root).post(
        "/admin/studies/study/add/",
        {
            "slug": "from-admin",
            "title": "From the admin",
            "consent_md": "c",
            "instructions_md": "i",
            "target_participants": "10",
            "items_per_participant": "5",
            "time_limit_minutes": "20",
            "completion_code": "X",
            "recruitment_params": '{"participant": "PROLIFIC_PID"}',
            "design": '{"factors": []}',
            "seed": "0",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "questions-TOTAL_FORMS": "0",
            "questions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.formset.errors for f in response.context["inline_admin_formsets"]],
    )
    study = Study.objects.get(slug="from-admin")
    assert study.memberships.get().user == root


def test_exclude_action_records_the_decision_beside_the_status_with_an_audit_row(setup):
    live, _ada, _bob, root = setup
    participant = join_study(study=live, external_id="p1", recruitment={})
    slot = give_consent(participant=participant)
    response = login(root).post(
        "/admin/annotation/participant/",
        {
            "action": "exclude_selected",
            "_selected_action": [participant.pk],
            "apply": "1",
            "reason": "failed both attention checks",
        },
    )
    assert response.status_code == 302
    participant.refresh_from_db()
    slot.refresh_from_db()
    # Exclusion is a decision beside the status: the participant keeps their status and slot.
    assert participant.status == "active" and participant.slot == slot
    assert participant.excluded and participant.exclusion_decision == "excluded"
    assert slot.status == Slot.Status.CLAIMED
    event = AuditEvent.objects.get(action="participant_excluded")
    assert event.detail["reason"] == "failed both attention checks" and event.actor == root
    # The status itself is not a field of the change form.
    page = login(root).get(f"/admin/annotation/participant/{participant.pk}/change/")
    assert b'name="status"' not in page.content


def test_exclude_participant_needs_a_reason_and_is_idempotent(setup):
    live, ada, _bob, _root = setup
    participant = join_study(study=live, external_id="p2", recruitment={})
    give_consent(participant=participant)
    with pytest.raises(ValueError, match="reason"):
        exclude_participant(participant=participant, reason=" ", actor=ada)
    exclude_participant(participant=participant, reason="bot", actor=ada)
    exclude_participant(participant=participant, reason="bot", actor=ada)
    stored = Participant.objects.get(pk=participant.pk)
    assert stored.excluded and stored.exclusion_reason == "bot" and stored.status == "active"
    assert AuditEvent.objects.filter(action="participant_excluded").count() == 1


def test_model_changes_in_the_admin_go_through_the_registry(setup, settings):
    _live, ada, _bob, root = setup
    model = LanguageModel.objects.create(
        name="m1",
        backend="openai",
        backend_settings={"base_url": "http://127.0.0.1:1/v1", "model": "m"},
        owner=ada,
    )
    form = {
        "backend": "openai",
        "backend_settings": '{"base_url": "http://evil.example.com/v1", "model": "m"}',
        "queue": "default",
        "temperature": "0.7",
        "max_tokens": "512",
        "owner": ada.pk,
        "shared": "on",
    }
    admin = login(root)
    response = admin.post(f"/admin/studies/languagemodel/{model.pk}/change/", form)
    assert response.status_code == 200 and b"not allowed" in response.content
    form["backend_settings"] = '{"base_url": "http://localhost:2/v1", "model": "m"}'
    response = admin.post(f"/admin/studies/languagemodel/{model.pk}/change/", form)
    assert response.status_code == 302
    model.refresh_from_db()
    assert model.backend_settings["base_url"] == "http://localhost:2/v1"
    event = AuditEvent.objects.get(model=model)
    assert event.action == "model_endpoint_changed" and event.actor == root
    listing = admin.get("/admin/studies/auditevent/?subject=model").content.decode()
    assert "model_endpoint_changed" in listing
