"""A participant completes the example study in Chromium: desktop with keyboard, and a phone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from annotation.models import Participant, Rating, Trial

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
# One statement: a matrix row or a fieldset, on rating and attention pages alike.
STATEMENTS = "form.rating-form [data-question]"


def progress(page: Page) -> tuple[int, int]:
    text = page.locator("#progress-label").inner_text()
    current, total = re.search(r"(\d+) of (\d+)", text).groups()
    return int(current), int(total)


def is_topic_page(page: Page) -> bool:
    return page.locator("input[name=topic]").count() > 0


def pick_topic_if_asked(page: Page) -> None:
    if is_topic_page(page):
        page.locator("label.choice").first.click()
        with page.expect_navigation():
            page.get_by_role("button", name="Continue").click()


def rate_every_statement(page: Page, point: int = 3) -> None:
    """Click the ``point``-th choice (0-based) of every statement on the page."""
    for statement in page.locator(STATEMENTS).all():
        statement.locator("label.point").nth(point).click()


def answer_with_mouse(page: Page) -> None:
    rate_every_statement(page, 3)


def answer_with_keyboard(page: Page) -> None:
    """Only keys: number keys choose and move on (progressive enhancement), then Enter."""
    for _ in range(page.locator(STATEMENTS).count()):
        page.keyboard.press("5")
    # After the last statement the focus has moved on to the button.
    expect(page.get_by_role("button", name=re.compile("Next|Finish"))).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")


def join(page: Page, base_url: str, pid: str) -> None:
    page.goto(f"{base_url}/s/refusal-perception/?PROLIFIC_PID={pid}&STUDY_ID=st&SESSION_ID=se")
    expect(page.get_by_role("heading", name="Information and consent")).to_be_visible()
    page.get_by_role("button", name="I agree to take part").click()
    expect(page.get_by_role("heading", name="Instructions")).to_be_visible()
    page.get_by_role("button", name="Start").click()


def finish_study(page: Page, *, refresh_at: int | None = None, keyboard: bool = False) -> None:
    """Answer every page; each one (topic choices too) is the next page number, of one total."""
    expect(page.locator("#progress-label")).to_be_visible()
    total = progress(page)[1]
    while page.locator("#progress-label").count():
        current, shown_total = progress(page)
        assert shown_total == total
        # The bar shows the same numbers as the label.
        bar = page.locator("progress.progress")
        assert (bar.get_attribute("value"), bar.get_attribute("max")) == (str(current), str(total))
        if is_topic_page(page):
            pick_topic_if_asked(page)
        else:
            if current == refresh_at:
                # A refresh mid-item must show the same item, with nothing stored twice.
                page.locator(STATEMENTS).first.locator("label.point").nth(1).click()
                page.reload()
                assert progress(page) == (current, total)
                expect(page.locator(STATEMENTS).first.locator("input").nth(1)).to_be_checked()
            if keyboard and current % 2:
                answer_with_keyboard(page)
            else:
                answer_with_mouse(page)
                with page.expect_navigation():
                    page.get_by_role("button", name=re.compile("Next|Finish")).click()
        if page.locator("#progress-label").count():
            assert progress(page)[0] == current + 1
        else:
            assert current == total, "the last page is page N of N"


@pytest.fixture
def live_study(make_study, live_server):
    study = make_study(target_participants=8)
    return study, live_server.url


def test_participant_completes_study_on_desktop_with_refresh_and_keyboard(
    browser: Browser, live_study
):
    study, base_url = live_study
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    join(page, base_url, "browser-desktop")
    pick_topic_if_asked(page)
    finish_study(page, refresh_at=progress(page)[0], keyboard=True)
    expect(page.get_by_role("heading", name=re.compile("you have finished"))).to_be_visible()
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    expect(page.locator("#completion-link")).to_have_attribute("href", study.completion_url)
    participant = Participant.objects.get(study=study)
    assert participant.status == "completed"
    trials = Trial.objects.filter(participant=participant)
    assert trials.count() == 10 and all(t.ms_on_page is not None for t in trials)
    per_question = study.questions.filter(is_attention_check=False).count()
    assert Rating.objects.filter(participant=participant).count() == 8 * per_question + 2
    # Reopening the link after finishing shows the code again, as the same participant.
    page.goto(f"{base_url}/s/refusal-perception/?PROLIFIC_PID=browser-desktop")
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    assert Participant.objects.filter(study=study).count() == 1
    page.close()


def test_participant_completes_study_on_a_phone(browser: Browser, live_study):
    study, base_url = live_study
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
    )
    page = context.new_page()
    join(page, base_url, "browser-phone")
    pick_topic_if_asked(page)
    # Nothing wider than the screen: no sideways scrolling on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "phone-item.png", full_page=True)
    finish_study(page)
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    assert Participant.objects.get(study=study).status == "completed"
    context.close()
