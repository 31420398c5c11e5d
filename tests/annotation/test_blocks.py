"""Questionnaire blocks through the participant pages (Django test client, no JavaScript)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from annotation.models import BlockAnswer, Participant, Rating, Slot, SlotItem
from studies.models import Study
from tests.annotation.block_fixtures import GOOD_AFTER, GOOD_BEFORE, add_blocks
from tests.annotation.test_views import answer_page, page_label, pages_of, refused, start

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(make_study) -> Study:
    study = make_study(target_participants=2)
    add_blocks(study)
    return study


def path(response) -> str:
    return response.request["PATH_INFO"]


def error_for(html: str, key: str) -> str:
    match = re.search(rf'<p class="field-error" id="err-{key}">([^<]*)</p>', html)
    return match.group(1) if match else ""


def items_of(study: Study) -> int:
    return SlotItem.objects.filter(slot__study=study, slot__index=0).count()


def test_before_and_after_blocks_through_the_real_pages(study):
    client = Client()
    pages = pages_of(study)
    response = start(client, study)
    # After the instructions comes the "before" block, as its own page.
    assert path(response) == f"/s/{study.slug}/block/demographics/"
    html = response.content.decode()
    assert "<h1>About you</h1>" in html
    assert "<strong>about you</strong>" in html and "<script>" not in html  # sanitised Markdown
    assert f"Page 1 of {pages}" in html
    assert html.count("<fieldset") == 3 and html.count("<legend>") == 3
    assert 'type="radio" name="age_group" value="25–34"' in html
    assert 'type="checkbox" name="ai_tools" value="Claude"' in html
    assert re.search(
        r'type="number" id="input-chatbot_days" name="chatbot_days"[^>]* min="0" max="7"', html
    )
    assert '<label for="input-chatbot_days">Your answer (a number from 0 to 7)</label>' in html

    # Bad answers: each error next to its field, valid answers kept, nothing stored.
    url = path(response)
    bad = refused(
        client, url, {"age_group": "25–34", "ai_tools": ["Claude", "Bing"], "chatbot_days": "8"}
    )
    page = bad.content.decode()
    assert error_for(page, "ai_tools") == "Please choose only among the options shown."
    assert error_for(page, "chatbot_days") == "Please enter a number from 0 to 7."
    assert error_for(page, "age_group") == ""
    assert 'value="25–34" required checked' in page
    assert 'name="ai_tools" value="Claude" checked' in page
    assert 'value="8"' in page
    participant = Participant.objects.get(study=study)
    assert not BlockAnswer.objects.exists() and participant.completed_blocks == []

    missing = refused(client, url, {"chatbot_days": "two"})
    page = missing.content.decode()
    assert error_for(page, "age_group") == "Please choose an answer."
    assert error_for(page, "ai_tools") == "Please choose at least one answer."
    assert error_for(page, "chatbot_days").startswith("Please enter a number")
    assert not BlockAnswer.objects.exists()

    # Good answers are stored typed, then the first item follows.
    response = client.post(url, GOOD_BEFORE, follow=True)
    assert path(response) == f"/s/{study.slug}/item/1/"
    assert f"Page 2 of {pages}" in response.content.decode()
    stored = {a.question.key: a for a in BlockAnswer.objects.select_related("question")}
    assert stored["age_group"].value_text == "25–34"
    assert stored["ai_tools"].value_choices == ["ChatGPT", "Gemini"]  # in option order
    assert stored["chatbot_days"].value_number == 3.0
    assert Participant.objects.get().completed_blocks == ["demographics"]

    # Resubmit, refresh and back: nothing stored twice, always the current page.
    again = client.post(url, GOOD_BEFORE, follow=True)
    assert path(again) == f"/s/{study.slug}/item/1/"
    back = client.get(url, follow=True)
    assert path(back) == f"/s/{study.slug}/item/1/"
    assert BlockAnswer.objects.count() == 3

    # The rated items, then the "after" block instead of the end.
    numbers = []
    while "/item/" in path(response):
        numbers.append(page_label(response.content.decode()))
        response, _ = answer_page(client, study, response)
    # One rating page per item, each after its topic choice page (seed design): 2, 4, 6, …
    assert numbers[0] == (2, pages)
    assert [n for n, _ in numbers] == sorted(set(n for n, _ in numbers))
    assert path(response) == f"/s/{study.slug}/block/final/"
    html = response.content.decode()
    assert f"Page {pages} of {pages}" in html and "Finish" in html
    assert 'maxlength="20"' in html and "Limit: 20 characters." in html
    assert Participant.objects.get().status == "active"
    assert Slot.objects.get(study=study, index=0).status == Slot.Status.CLAIMED

    final_url = path(response)
    bad = refused(client, final_url, {"comment": "x" * 21})
    page = bad.content.decode()
    assert error_for(page, "ai_trust") == "Please choose an answer."
    assert "at most 20 characters" in error_for(page, "comment")
    assert "x" * 21 in page  # the text is kept for the participant to shorten
    assert BlockAnswer.objects.count() == 3

    response = client.post(final_url, GOOD_AFTER, follow=True)
    assert path(response) == f"/s/{study.slug}/done/"
    assert study.completion_code in response.content.decode()
    participant = Participant.objects.get()
    assert participant.status == "completed" and participant.completed_at is not None
    assert participant.completed_blocks == ["demographics", "final"]
    assert Slot.objects.get(study=study, index=0).status == Slot.Status.COMPLETED
    trust = BlockAnswer.objects.get(question__key="ai_trust")
    assert trust.value_number == 4
    # The optional comment left empty stores no row.
    assert not BlockAnswer.objects.filter(question__key="comment").exists()
    assert client.post(final_url, GOOD_AFTER, follow=True).request["PATH_INFO"].endswith("/done/")
    assert BlockAnswer.objects.count() == 4


def test_skipping_ahead_by_url_is_refused(study):
    client = Client()
    start(client, study)
    block_url = f"/s/{study.slug}/block/demographics/"
    for url in (
        f"/s/{study.slug}/item/1/",
        f"/s/{study.slug}/item/2/",
        f"/s/{study.slug}/block/final/",
        f"/s/{study.slug}/block/no-such-block/",
        f"/s/{study.slug}/done/",
    ):
        assert path(client.get(url, follow=True)) == block_url, url
    # Answers posted to a later block or an item are not accepted either.
    response = client.post(f"/s/{study.slug}/block/final/", GOOD_AFTER, follow=True)
    assert path(response) == block_url
    client.post(f"/s/{study.slug}/item/1/", {"perceived_compliance": "4"})
    assert not BlockAnswer.objects.exists() and not Rating.objects.exists()


def test_block_page_before_consent_leads_to_consent(study):
    client = Client()
    client.get(f"/s/{study.slug}/?PROLIFIC_PID=early")
    response = client.post(f"/s/{study.slug}/block/demographics/", GOOD_BEFORE, follow=True)
    assert path(response) == f"/s/{study.slug}/consent/"
    assert not BlockAnswer.objects.exists()


def test_block_answers_of_a_paused_study_are_still_taken(study):
    client = Client()
    start(client, study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
    response = client.post(f"/s/{study.slug}/block/demographics/", GOOD_BEFORE, follow=True)
    assert path(response) == f"/s/{study.slug}/item/1/"
    assert BlockAnswer.objects.count() == 3


def test_block_after_the_time_limit_ends_the_session(study):
    client = Client()
    start(client, study)
    Participant.objects.update(consented_at=timezone.now() - timedelta(minutes=46))
    response = client.post(f"/s/{study.slug}/block/demographics/", GOOD_BEFORE, follow=True)
    assert path(response) == f"/s/{study.slug}/ended/"
    assert "time available for this study has run out" in response.content.decode()
    assert not BlockAnswer.objects.exists()
    assert Slot.objects.get(study=study, index=0).status == Slot.Status.FREE


def test_instructions_count_block_pages(study):
    client = Client()
    client.get(f"/s/{study.slug}/?PROLIFIC_PID=counting")
    response = client.post(f"/s/{study.slug}/consent/", {"decision": "agree"}, follow=True)
    assert f"There are {pages_of(study)} pages to complete." in response.content.decode()


def test_blocks_from_a_spec_file_reach_the_participant(make_study, seed_spec):
    """The spec's way in (SPECFORMAT's blocks section) ends on the same pages and rows."""
    from studies.spec import load_spec_data, spec_dict

    data = spec_dict(seed_spec[0])
    data["blocks"] = [
        {
            "key": "about_you",
            "title": "About you",
            "placement": "before",
            "questions": [
                {"key": "age", "type": "number", "text": "Your age?", "min": 18, "max": 99},
                {
                    "key": "lang",
                    "type": "single_choice",
                    "text": "First language?",
                    "options": ["English", "Other"],
                },
            ],
        }
    ]
    study = make_study(base=(load_spec_data(data), seed_spec[1]), target_participants=2)
    client = Client()
    response = start(client, study)
    assert path(response) == f"/s/{study.slug}/block/about_you/"
    assert (
        "Please enter a number"
        in refused(client, path(response), {"age": "17", "lang": "English"}).content.decode()
    )
    response = client.post(path(response), {"age": "30", "lang": "English"}, follow=True)
    assert path(response) == f"/s/{study.slug}/item/1/"
    values = {a.question.key: (a.value_number, a.value_text) for a in BlockAnswer.objects.all()}
    assert values == {"age": (30.0, ""), "lang": (None, "English")}
