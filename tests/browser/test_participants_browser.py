"""In Chromium: the participants table and the builder's quality section pass axe, and a
researcher keeps a flagged participant with the keyboard-reachable form (no JavaScript needed)."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from annotation import services
from annotation.models import Participant
from studies.models import StudyMembership
from studies.spec.model import AttentionRuleSpec, QualitySpec, ScreenOutSpec
from tests.browser.axe import assert_accessible
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium fixture
from tests.lifecycle.participants import complete

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_participants_table_and_quality_section_are_accessible(
    browser: Browser,  # noqa: F811
    make_study,
    live_server,
):
    rules = QualitySpec(attention_checks=AttentionRuleSpec(enabled=True, min_failed=1))
    study = make_study(target_participants=3, quality=rules)
    complete(study, "careful")
    sloppy = complete(study, "sloppy", attention_ok=False)
    services.screen_participants(study=study)
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/participants/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-owner-123")
    page.locator("main form button[type=submit], main form input[type=submit]").first.click()
    row = page.locator(f"#participant-{sloppy.pk}")
    expect(row.locator(".flag")).to_contain_text("failed 2 of 2 attention checks")
    assert_accessible(page)

    row.get_by_label("Reason to keep").fill("misread the check's wording")
    row.get_by_role("button", name="Keep").press("Enter")
    expect(page.locator(f"#participant-{sloppy.pk} .decision")).to_contain_text("kept")
    sloppy.refresh_from_db()
    assert (sloppy.exclusion_decision, sloppy.excluded) == (Participant.Exclusion.KEPT, False)
    assert_accessible(page)

    page.goto(f"{live_server.url}/studies/{study.slug}/design/quality/")
    expect(page.get_by_label("Flag failed attention checks")).to_be_checked()
    assert_accessible(page)
    page.close()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_the_screen_out_page_is_accessible_on_a_phone_and_a_desktop(
    browser: Browser,  # noqa: F811
    make_study,
    live_server,
    viewport: str,
):
    from tests.browser.test_participant_pages import (
        INLINE_MARKUP,
        VIEWPORTS,
        click,
        link,
        new_context,
    )
    from tests.lifecycle.participants import answer_pages

    rules = QualitySpec(
        attention_checks=AttentionRuleSpec(enabled=True, min_failed=1),
        screen_out=ScreenOutSpec(enabled=True, code="OUT-PHONE-1", url="https://example.org/o"),
    )
    study = make_study(target_participants=2, quality=rules)
    page = new_context(browser, viewport).new_page()
    page.goto(link(live_server.url, study.slug, "screened"))
    click(page, "I agree to take part")
    # The answers go in through the same service the item pages call; the first wrong check
    # ends the session.
    participant = Participant.objects.get(study=study)
    participant = answer_pages(participant, attention_ok=False)
    assert participant.status == Participant.Status.SCREENED_OUT
    page.reload()
    expect(page.get_by_role("heading", name="This session has ended", level=1)).to_be_visible()
    expect(page.locator("#screen-out-code")).to_have_text("OUT-PHONE-1")
    expect(page.locator("#completion-code")).to_have_count(0)
    assert page.evaluate(INLINE_MARKUP) == []
    width = VIEWPORTS[viewport]["viewport"]["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(page)
    page.close()
