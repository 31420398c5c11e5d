"""The owner's payments page in Chromium: axe finds nothing, with a list shown and with a
refused form; the lists download without JavaScript."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from annotation import services as participant_services
from studies.models import StudyMembership
from tests.browser.axe import assert_accessible

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_payments_page_is_accessible_and_shows_ids_only_when_asked(
    browser: Browser, make_study, live_server
):
    study = make_study(target_participants=2)
    participant = participant_services.join_study(
        study=study, external_id="PPXbrowser0001", recruitment={}
    )
    participant_services.give_consent(participant=participant)
    participant.status = "completed"
    participant.save(update_fields=["status"])
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-owner-123")
    with page.expect_navigation():
        page.click("button[type=submit]")
    with page.expect_navigation():
        page.get_by_role("link", name="Approve, reject and bonus lists").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Approve, reject and bonus lists")
    assert "PPXbrowser0001" not in page.content()
    assert_accessible(page)

    with page.expect_navigation():
        page.get_by_role("link", name="Show the ids of the approve list").click()
    expect(page.get_by_text("PPXbrowser0001")).to_be_visible()
    assert_accessible(page)

    with page.expect_download() as download:
        page.get_by_role("link", name="Download approve.txt").click()
    assert open(download.value.path(), encoding="utf-8").read() == "PPXbrowser0001\n"

    page.get_by_label("Bonus per participant").fill("1.234")
    with page.expect_navigation():
        page.get_by_role("button", name="Download bonus.csv").click()
    expect(page.get_by_text("Use at most two decimals")).to_be_visible()
    assert_accessible(page)
    page.close()
