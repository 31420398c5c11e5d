"""A refused submit comes back as a GET (303), so a reload shows the page again instead of
"Confirm Form Resubmission", and nothing is stored until the answers are complete."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, Response, expect

from annotation.models import BlockAnswer, Participant, Rating
from tests.annotation.block_fixtures import add_blocks
from tests.browser.test_participant_browser import STATEMENTS, join, progress
from tests.browser.test_participant_layout import DESKTOP, open_rating_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def submit_without_browser_checks(page: Page, button: str) -> Response:
    """Send the form as a browser that does not check required fields would."""
    page.locator("main form").last.evaluate("form => { form.noValidate = true; }")
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    return navigation.value


def assert_came_back_by_get(response: Response) -> None:
    """The refused POST was answered 303 and the page shown is the GET that followed it."""
    posted = response.request.redirected_from
    assert posted is not None and posted.method == "POST", "the refused POST was not redirected"
    assert posted.response().status == 303
    assert response.request.method == "GET" and response.status == 200


def test_a_refused_rating_page_comes_back_by_get_and_a_reload_posts_nothing(
    browser: Browser, make_study, live_server
):
    study = make_study(target_participants=2)
    page = browser.new_context(**DESKTOP).new_page()
    open_rating_page(page, live_server.url, "resubmit")
    participant = Participant.objects.get(study=study)
    stored = Rating.objects.filter(participant=participant).count()
    where = (page.url, progress(page))
    statements = page.locator(STATEMENTS)
    count = statements.count()
    for index in range(count - 1):
        statements.nth(index).locator("label.point").nth(2).click()

    response = submit_without_browser_checks(page, "Next")
    assert_came_back_by_get(response)
    assert (page.url, progress(page)) == where
    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("#error-summary a")).to_have_count(1)
    expect(statements.last).to_have_class(re.compile("has-error"))
    expect(statements.last.locator(".field-error")).to_be_visible()
    # The answers given are kept (by the server: the page's own copy is dropped on submit).
    expect(page.locator(f"{STATEMENTS} input:checked")).to_have_count(count - 1)
    assert Rating.objects.filter(participant=participant).count() == stored

    # A reload is a plain GET: no resubmission prompt, nothing stored, the same page.
    response = page.reload()
    assert response.request.method == "GET" and response.status == 200
    assert (page.url, progress(page)) == where
    assert Rating.objects.filter(participant=participant).count() == stored

    for index in range(count):
        statements.nth(index).locator("label.point").nth(2).click()
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()
    assert progress(page)[0] == where[1][0] + 1
    assert Rating.objects.filter(participant=participant).count() == stored + count


def test_a_refused_questionnaire_block_comes_back_by_get_and_a_reload_posts_nothing(
    browser: Browser, make_study, live_server
):
    study = make_study(target_participants=2)
    add_blocks(study)
    page = browser.new_context(**DESKTOP).new_page()
    join(page, live_server.url, "block-resubmit")
    expect(page.get_by_role("heading", name="About you")).to_be_visible()
    where = page.url
    page.get_by_label("25–34").check()

    response = submit_without_browser_checks(page, "Next")
    assert_came_back_by_get(response)
    assert page.url == where
    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("fieldset.has-error")).not_to_have_count(0)
    expect(page.get_by_label("25–34")).to_be_checked()
    assert BlockAnswer.objects.count() == 0

    response = page.reload()
    assert response.request.method == "GET" and response.status == 200
    assert page.url == where
    assert BlockAnswer.objects.count() == 0
