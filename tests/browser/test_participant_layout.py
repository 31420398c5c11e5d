"""The rating page in Chromium: the stimulus stays in view while rating, on a phone and a
desktop; the statements form a matrix that works by keyboard and without JavaScript."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_participant_browser import (
    STATEMENTS,
    answer_with_mouse,
    join,
    pick_topic_if_asked,
    progress,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# SCREENSHOT_DIR=/tmp/... keeps the pictures somewhere else than var/screenshots.
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots"
)
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "is_mobile": True,
    "has_touch": True,
    "device_scale_factor": 2,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
FIRST_STATEMENT = "The assistant did what I asked it to do."


def open_rating_page(page: Page, base_url: str, pid: str) -> None:
    """Join and go on until a page with a conversation to rate."""
    join(page, base_url, pid)
    for _ in range(12):
        pick_topic_if_asked(page)
        if page.locator("section.conversation").count():
            return
        answer_with_mouse(page)
        with page.expect_navigation():
            page.get_by_role("button", name=re.compile("Next|Finish")).click()
    raise AssertionError("no rating page reached")


def box(page: Page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png")


def test_on_a_phone_the_response_stays_in_a_panel_on_top(browser: Browser, make_study, live_server):
    make_study(target_participants=2)
    context = browser.new_context(**PHONE)
    page = context.new_page()
    open_rating_page(page, live_server.url, "phone-layout")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert box(page, ".stimulus")["height"] <= 0.36 * 844
    shoot(page, "rating-phone")

    # Rating the last statement: the panel is still on top and the statement is not under it.
    page.locator(STATEMENTS).last.scroll_into_view_if_needed()
    panel, last = box(page, ".stimulus"), box(page, f"{STATEMENTS} >> nth=-1")
    assert 0 <= panel["y"] < 2 and panel["y"] + panel["height"] <= last["y"] + 1
    assert last["y"] + last["height"] <= 844
    shoot(page, "rating-phone-last")
    # The whole response is reachable inside the panel, without scrolling the page back.
    scrolled = page.evaluate("window.scrollY")
    page.locator(".stimulus").evaluate("panel => { panel.scrollTop = panel.scrollHeight; }")
    response = box(page, ".message.assistant")
    assert response["y"] + response["height"] <= panel["y"] + panel["height"] + 1
    assert page.evaluate("window.scrollY") == scrolled

    # Number keys work here too (a phone with a keyboard, a small window).
    page.locator(STATEMENTS).first.locator("input").first.focus()
    for _ in range(page.locator(STATEMENTS).count()):
        page.keyboard.press("6")
    expect(page.locator(f"{STATEMENTS} input[value='6']:checked")).to_have_count(
        page.locator(STATEMENTS).count()
    )
    expect(page.get_by_role("button", name="Next")).to_be_focused()
    # Going back up by keyboard, the focused statement is never hidden under the panel.
    for _ in range(page.locator(STATEMENTS).count()):
        page.keyboard.press("Shift+Tab")
        focused = page.evaluate(
            "(() => { const r = document.activeElement.closest('[data-question]')"
            ".getBoundingClientRect(); return [r.top, r.bottom]; })()"
        )
        panel = box(page, ".stimulus")
        assert focused[0] >= panel["y"] + panel["height"] - 1 and focused[1] <= 844
    context.close()


def test_on_a_desktop_the_statements_are_a_matrix_beside_the_stimulus(
    browser: Browser, make_study, live_server
):
    make_study(target_participants=2)
    context = browser.new_context(**DESKTOP)
    page = context.new_page()
    open_rating_page(page, live_server.url, "desktop-layout")
    stimulus, form = box(page, ".stimulus"), box(page, "form.rating-form")
    assert stimulus["x"] + stimulus["width"] <= form["x"] and abs(stimulus["y"] - form["y"]) < 40
    shoot(page, "rating-desktop")

    statements = page.locator(STATEMENTS).count()
    matrix = page.get_by_role("table", name="Rate each statement")
    expect(matrix.get_by_role("row")).to_have_count(statements + 1)
    for anchor in ("Strongly disagree", "Neither agree nor disagree", "Strongly agree"):
        expect(matrix.get_by_role("columnheader", name=re.compile(anchor))).to_have_count(1)
    expect(matrix.get_by_role("rowheader", name=FIRST_STATEMENT)).to_have_count(1)
    # Each radio says which statement and which point it is.
    strongly = page.get_by_role("radio", name=f"{FIRST_STATEMENT}: Strongly agree", exact=True)
    expect(strongly).to_have_count(1)
    expect(page.get_by_text("Tip: press 1–7 to answer, Tab to move on.")).to_be_visible()

    # Keyboard only: Tab into the first statement, then number keys down the matrix.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "radio":
            break
    page.keyboard.press("7")
    expect(strongly).to_be_checked()
    for _ in range(statements - 1):
        page.keyboard.press("2")
    expect(page.locator(f"{STATEMENTS} input[value='2']:checked")).to_have_count(statements - 1)
    expect(page.get_by_role("button", name="Next")).to_be_focused()
    # The stimulus is still in view beside the last statement.
    page.locator(STATEMENTS).last.scroll_into_view_if_needed()
    stimulus = box(page, ".stimulus")
    assert stimulus["y"] >= 0 and stimulus["y"] + stimulus["height"] <= 900
    response = box(page, ".message.assistant")
    assert 0 <= response["y"] < 900
    shoot(page, "rating-desktop-last")
    before = progress(page)[0]
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert progress(page)[0] == before + 1
    context.close()


def test_without_javascript_a_phone_rates_by_tapping_and_sees_no_key_tip(
    browser: Browser, make_study, live_server
):
    make_study(target_participants=2)
    context = browser.new_context(**PHONE, java_script_enabled=False)
    page = context.new_page()
    open_rating_page(page, live_server.url, "no-script")
    expect(page.locator("#key-hint")).to_be_hidden()
    before = progress(page)[0]
    answer_with_mouse(page)
    expect(page.locator(f"{STATEMENTS} input:checked")).to_have_count(
        page.locator(STATEMENTS).count()
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()
    assert progress(page)[0] == before + 1
    context.close()
