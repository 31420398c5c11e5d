"""Withdrawal through the real participant pages: a link on every page of someone taking part,
a confirmation page, the slot back to the free ones, answers kept out of the data or deleted."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from annotation import selectors
from annotation.models import BlockAnswer, Participant, Rating, Slot, Trial
from studies.models import AuditEvent, Study
from tests.annotation.block_fixtures import GOOD_AFTER, GOOD_BEFORE, add_blocks
from tests.annotation.test_views import answer_page, form_fields, start

pytestmark = pytest.mark.django_db

WITHDRAW_LINK = 'id="withdraw-link"'


def _withdraw_url(study: Study) -> str:
    return f"/s/{study.slug}/withdraw/"


def _csrf(html: str) -> str:
    return form_fields(html)["csrfmiddlewaretoken"]


def withdraw(client: Client, study: Study, *, delete: bool):
    """Follow the page's link to the confirmation page and confirm, as a participant would."""
    page = client.get(_withdraw_url(study))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="delete_answers"' in html and "Also delete my answers" in html
    data = {"csrfmiddlewaretoken": _csrf(html)}
    if delete:
        data["delete_answers"] = "on"
    response = client.post(_withdraw_url(study), data)
    assert response.status_code == 303
    assert response["Location"] == f"/s/{study.slug}/withdrawn/"
    return client.get(response["Location"])


def test_every_page_of_someone_taking_part_links_to_withdrawal(make_study):
    study = make_study(target_participants=2)
    add_blocks(study)
    client = Client()
    response = client.get(f"/s/{study.slug}/?PROLIFIC_PID=W-1&STUDY_ID=s&SESSION_ID=x", follow=True)
    kinds = {}
    kinds["consent"] = response.content.decode()
    response = client.post(f"/s/{study.slug}/consent/", {"decision": "agree"}, follow=True)
    kinds["instructions"] = response.content.decode()
    response = client.post(f"/s/{study.slug}/instructions/", follow=True)
    while "/done/" not in response.request["PATH_INFO"]:
        html = response.content.decode()
        path = response.request["PATH_INFO"]
        if "/block/" in path:
            kind = "block"
        elif 'name="topic"' in html:
            kind = "topic"
        elif "Answer the question below" in html:
            kind = "attention"
        else:
            kind = "item"
        kinds.setdefault(kind, html)
        assert WITHDRAW_LINK in html, path
        assert f'href="{_withdraw_url(study)}"' in html
        if kind == "block":
            response = _answer_block(client, path, html)
        elif kind == "topic":
            topic = re.search(r'name="topic" value="(\d+)"', html).group(1)
            response = client.post(path, {"topic": topic}, follow=True)
        else:
            response, _ = answer_page(client, study, response)
    assert set(kinds) == {"consent", "instructions", "block", "topic", "item", "attention"}
    for kind, html in kinds.items():
        assert WITHDRAW_LINK in html, kind
    # Finished: the done page offers no withdrawal, and the withdrawal page sends them back.
    assert WITHDRAW_LINK not in response.content.decode()
    assert client.get(_withdraw_url(study))["Location"] == f"/s/{study.slug}/done/"


def _answer_block(client: Client, path: str, html: str):
    answers = GOOD_BEFORE if "demographics" in path else GOOD_AFTER
    response = client.post(path, {**form_fields(html), **answers}, follow=True)
    assert response.request["PATH_INFO"] != path, "the block was refused"
    return response


def _rate_two_items(client: Client, study: Study):
    response = start(client, study)
    for _ in range(2):
        response, _data = answer_page(client, study, response)
    return response


def test_withdrawing_keeps_answers_out_of_the_data_and_frees_the_slot(make_study):
    study = make_study(target_participants=2)
    client = Client()
    response = _rate_two_items(client, study)
    participant = Participant.objects.get(study=study)
    slot_pk = participant.slot_id
    assert Rating.objects.filter(participant=participant).exists()
    assert WITHDRAW_LINK in response.content.decode()

    page = withdraw(client, study, delete=False)
    html = page.content.decode()
    assert "You have withdrawn from this study" in html
    assert "kept out of the analysis" in html
    participant.refresh_from_db()
    assert participant.status == Participant.Status.WITHDRAWN
    assert participant.withdrawn_at is not None and participant.slot_id is None
    assert Slot.objects.get(pk=slot_pk).status == Slot.Status.FREE
    # The answers are kept (not asked to delete) but counted nowhere.
    assert Rating.objects.filter(participant=participant).exists()
    for rule in ("all", "completed", "included"):
        assert not selectors.counted_participants(study, rule).filter(pk=participant.pk).exists()
    assert not [r for r in selectors.ratings_long_format(study, "all")]
    audit = AuditEvent.objects.get(action="participant_withdrawn")
    assert audit.detail["participant"] == participant.pseudonym
    assert audit.detail["answers_deleted"] is False and audit.detail["by"] == "participant"
    # Every participant page now leads to the withdrawn page; a new participant gets the slot.
    for path in ("consent/", "instructions/", "item/1/", "resume/"):
        assert client.get(f"/s/{study.slug}/{path}")["Location"] == f"/s/{study.slug}/withdrawn/"
    other = Client()
    start(other, study, pid="after-withdrawal")
    assert Participant.objects.get(study=study, status="active").slot_id is not None


def test_withdrawing_with_deletion_leaves_a_stub_without_answers(make_study):
    study = make_study(target_participants=2)
    assert study.completion_url  # the seed study sends finishers back to Prolific
    add_blocks(study)
    client = Client()
    response = client.get(f"/s/{study.slug}/?PROLIFIC_PID=D-1&STUDY_ID=s&SESSION_ID=x", follow=True)
    client.post(f"/s/{study.slug}/consent/", {"decision": "agree"}, follow=True)
    response = client.post(f"/s/{study.slug}/instructions/", follow=True)
    response = _answer_block(client, response.request["PATH_INFO"], response.content.decode())
    response, _ = answer_page(client, study, response)
    participant = Participant.objects.get(study=study)
    assert BlockAnswer.objects.filter(participant=participant).exists()
    assert Rating.objects.filter(participant=participant).exists()

    html = withdraw(client, study, delete=True).content.decode()
    assert "No answers of yours are kept" in html
    # The study has a completion URL: they are told to return the study on the platform.
    assert "Return submission" in html and "Do not submit a completion code" in html
    participant.refresh_from_db()
    assert participant.status == Participant.Status.WITHDRAWN
    for model in (Rating, Trial, BlockAnswer):
        assert not model.objects.filter(participant=participant).exists(), model.__name__
    audit = AuditEvent.objects.get(action="participant_withdrawn")
    assert audit.detail["answers_deleted"] is True and audit.detail["ratings"] > 0


def test_withdrawal_without_a_completion_url_says_nothing_about_the_platform(make_study):
    from studies.spec import CompletionSpec

    study = make_study(target_participants=2, completion=CompletionSpec(code="DONE-2"))
    assert not study.completion_url
    client = Client()
    start(client, study)
    html = withdraw(client, study, delete=False).content.decode()
    assert "Return submission" not in html


def test_withdrawal_needs_the_csrf_token_and_a_session(make_study):
    study = make_study(target_participants=2)
    client = Client()
    start(client, study)
    client.handler.enforce_csrf_checks = True
    response = client.post(_withdraw_url(study), {"delete_answers": "on"})
    assert response.status_code == 403
    assert Participant.objects.get(study=study).status == Participant.Status.ACTIVE
    stranger = Client()
    assert stranger.post(_withdraw_url(study), {}).status_code == 403  # no session
    assert Participant.objects.get(study=study).status == Participant.Status.ACTIVE


def test_asking_to_delete_after_withdrawing_still_deletes(make_study):
    study = make_study(target_participants=2)
    client = Client()
    _rate_two_items(client, study)
    withdraw(client, study, delete=False)
    participant = Participant.objects.get(study=study)
    assert Rating.objects.filter(participant=participant).exists()
    # Back on the confirmation page (it now sends them to the withdrawn page), a resubmitted
    # form asking for deletion is honoured.
    csrf = client.cookies.get("csrftoken")
    response = client.post(
        _withdraw_url(study),
        {"delete_answers": "on", "csrfmiddlewaretoken": csrf.value if csrf else ""},
    )
    assert response.status_code == 303
    assert not Rating.objects.filter(participant=participant).exists()
    assert AuditEvent.objects.filter(action="participant_withdrawn").count() == 2
    # Nothing left to delete: a third request writes no further row.
    client.post(_withdraw_url(study), {"delete_answers": "on"})
    assert AuditEvent.objects.filter(action="participant_withdrawn").count() == 2


def test_the_withdrawn_page_is_only_for_the_withdrawn(make_study):
    study = make_study(target_participants=2)
    client = Client()
    start(client, study)
    response = client.get(f"/s/{study.slug}/withdrawn/")
    assert response.status_code == 303 and "/item/1/" in response["Location"]
