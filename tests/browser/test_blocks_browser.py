"""Questionnaire blocks in Chromium: browser form validation, the character count, completion."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from annotation.models import BlockAnswer, Participant
from tests.annotation.block_fixtures import add_blocks
from tests.browser.test_participant_browser import answer_with_mouse, join, pick_topic_if_asked

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_participant_answers_both_blocks_in_a_browser(browser: Browser, make_study, live_server):
    study = make_study(target_participants=2)
    add_blocks(study)
    page = browser.new_page(viewport={"width": 390, "height": 844})
    join(page, live_server.url, "blocks-browser")
    expect(page.get_by_role("heading", name="About you")).to_be_visible()
    expect(page.locator("#progress-label")).to_have_text(re.compile(r"Page 1 of \d+"))
    # Required fields are checked by the browser before anything is sent.
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="About you")).to_be_visible()
    page.get_by_label("25–34").check()
    page.get_by_label("Gemini").check()
    page.get_by_label("ChatGPT").check()
    page.get_by_label("Your answer (a number from 0 to 7)").fill("3")
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()
    assert "/item/1/" in page.url
    # The rated items (progress counts the block pages too), then the after block.
    while "/item/" in page.url:
        pick_topic_if_asked(page)
        answer_with_mouse(page)
        with page.expect_navigation():
            page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Before you go")).to_be_visible()
    page.locator("fieldset.likert").first.locator("label.point").nth(3).click()
    comment = page.get_by_label("Your answer (at most 20 characters)")
    comment.fill("Thanks!")
    expect(page.locator("#limit-comment")).to_contain_text("7 / 20")
    with page.expect_navigation():
        page.get_by_role("button", name="Finish").click()
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    participant = Participant.objects.get(study=study)
    assert participant.status == "completed"
    answers = {a.question.key: a for a in BlockAnswer.objects.select_related("question")}
    assert answers["ai_tools"].value_choices == ["ChatGPT", "Gemini"]
    assert answers["ai_trust"].value_number == 4
    assert answers["comment"].value_text == "Thanks!"
    page.close()
