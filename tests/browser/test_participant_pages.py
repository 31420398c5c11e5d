"""Every kind of participant page in Chromium, on a desktop and a phone: axe-core finds nothing
moderate or worse, there is one <h1>, nothing scrolls sideways and the strict policy blocks
nothing (no inline script, style attribute or event handler)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from annotation import services as participant_services
from annotation.models import Participant
from studies.lifecycle import pause_study
from tests.annotation.block_fixtures import add_blocks
from tests.browser.axe import assert_accessible
from tests.browser.test_participant_browser import STATEMENTS, is_topic_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "is_mobile": True,
        "has_touch": True,
        "device_scale_factor": 2,
    },
}
# Recorded before any page script runs, so a blocked inline style or script cannot go unseen.
WATCH_POLICY = """
window.__blocked = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__blocked.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""
INLINE_MARKUP = """() => {
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    if (el.tagName === "SCRIPT" && !el.src) found.push("inline <script>");
    if (el.hasAttribute("style")) found.push(el.tagName.toLowerCase() + "[style]");
    for (const attr of el.attributes) {
      if (/^on/i.test(attr.name)) found.push(el.tagName.toLowerCase() + "[" + attr.name + "]");
    }
  }
  return found;
}"""
EVERY_KIND = {
    "consent",
    "declined",
    "instructions",
    "block",
    "topic",
    "rating",
    "attention",
    "done",
    "ended",
    "withdraw",
    "withdrawn",
    "no_session",
    "needs_link",
    "open_elsewhere",
    "full",
    "busy",
    "closed",
}


class Checker:
    """Checks each kind of page the first time it is seen, and remembers the kinds."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.seen: dict[str, str] = {}

    def __call__(self, page: Page, kind: str, heading: str | re.Pattern | None = None) -> None:
        if heading is not None:
            expect(page.get_by_role("heading", name=heading, level=1)).to_be_visible()
        if kind in self.seen:
            return
        expect(page.locator("h1")).to_have_count(1)
        assert page.evaluate(INLINE_MARKUP) == [], f"{kind}: inline markup"
        assert page.evaluate("window.__blocked") == [], f"{kind}: blocked by the policy"
        assert page.evaluate("document.documentElement.scrollWidth") <= self.width, kind
        assert_accessible(page)
        self.seen[kind] = page.url


def new_context(browser: Browser, viewport: str) -> BrowserContext:
    context = browser.new_context(**VIEWPORTS[viewport])
    context.add_init_script(WATCH_POLICY)
    return context


def link(base: str, slug: str, pid: str, session: str = "se") -> str:
    return f"{base}/s/{slug}/?PROLIFIC_PID={pid}&STUDY_ID=st&SESSION_ID={session}"


def click(page: Page, button: str | re.Pattern) -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()


def take_part(page: Page, check: Checker) -> None:
    """Consent (after declining once), instructions, both blocks and every item, to the end."""
    check(page, "consent", "Information and consent")
    click(page, "I do not agree")
    check(page, "declined", "Thank you")
    click(page, "I changed my mind")
    click(page, "I agree to take part")
    check(page, "instructions", "Instructions")
    click(page, "Start")
    check(page, "block", "About you")
    page.get_by_label("25–34").check()
    page.get_by_label("Gemini").check()
    page.get_by_label("Your answer (a number from 0 to 7)").fill("3")
    click(page, "Next")
    while "/item/" in page.url:
        if is_topic_page(page):
            check(page, "topic", "Choose a topic")
            page.locator("label.choice").first.click()
            click(page, "Continue")
            continue
        if page.locator("section.conversation").count():
            check(page, "rating", "Rate the assistant's response")
        else:
            check(page, "attention", "Answer the question below")
        for statement in page.locator(STATEMENTS).all():
            statement.locator("label.point").nth(2).click()
        click(page, re.compile("^(Next|Finish)$"))
    expect(page.get_by_role("heading", name="Before you go")).to_be_visible()
    page.locator("fieldset.likert").first.locator("label.point").nth(3).click()
    click(page, "Finish")
    check(page, "done", re.compile("you have finished"))


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_every_participant_page_kind_is_accessible(
    browser: Browser, make_study, live_server, settings, viewport: str
):
    base = live_server.url
    study = make_study(target_participants=3)
    add_blocks(study)
    small = make_study(slug="one-place", target_participants=1)
    check = Checker(VIEWPORTS[viewport]["viewport"]["width"])

    walker = new_context(browser, viewport).new_page()
    walker.goto(link(base, study.slug, "walker"))
    take_part(walker, check)

    # Ran out of time: the session has ended.
    late = new_context(browser, viewport).new_page()
    late.goto(link(base, study.slug, "late"))
    click(late, "I agree to take part")
    participant_services.time_out_participant(
        participant=Participant.objects.exclude(status="completed").get(study=study)
    )
    late.reload()
    check(late, "ended", "This session has ended")

    # Withdrawing from the instructions page, by its link, asking for the answers' deletion.
    leaver = new_context(browser, viewport).new_page()
    leaver.goto(link(base, study.slug, "leaver"))
    click(leaver, "I agree to take part")
    with leaver.expect_navigation():
        leaver.get_by_role("link", name="Withdraw from this study").click()
    check(leaver, "withdraw", "Withdraw from this study")
    leaver.get_by_label("Also delete my answers").check()
    click(leaver, "Withdraw")
    check(leaver, "withdrawn", "You have withdrawn from this study")

    stranger = new_context(browser, viewport).new_page()
    stranger.goto(f"{base}/s/{study.slug}/consent/")
    check(stranger, "no_session", "Please use your study link")
    response = stranger.goto(f"{base}/s/{study.slug}/")
    assert response.status == 400
    check(stranger, "needs_link", re.compile("open the study from your recruitment platform"))
    # The walker's id with another recruitment session: they are taking part elsewhere.
    response = stranger.goto(link(base, study.slug, "walker", session="another"))
    assert response.status == 409
    check(stranger, "open_elsewhere", "This study is open in another browser")

    holder = new_context(browser, viewport).new_page()
    holder.goto(link(base, small.slug, "holder"))
    click(holder, "I agree to take part")
    stranger.goto(link(base, small.slug, "second"))
    check(stranger, "full", "This study is full")

    # One new arrival per address in five minutes: the next one is asked to come back.
    settings.ARRIVALS_PER_ADDRESS = "1/300"
    stranger.goto(link(base, study.slug, "arrival-1"))
    response = stranger.goto(link(base, study.slug, "arrival-2"))
    assert response.status == 429
    check(stranger, "busy", "Too many people are arriving right now")
    settings.ARRIVALS_PER_ADDRESS = "0"

    pause_study(study=study)
    response = stranger.goto(link(base, study.slug, "after-pause"))
    assert response.status == 403
    check(stranger, "closed", "This study is paused")

    assert set(check.seen) == EVERY_KIND
