"""In Chromium: the dashboard draws its Plotly figures, refreshes itself, and "Copy" appears."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from studies.models import StudyMembership
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium fixture
from tests.lifecycle.participants import complete

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_draws_and_refreshes_itself(browser: Browser, make_study, live_server):  # noqa: F811
    study = make_study(target_participants=4)
    complete(study, "first")
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-owner-123")
    page.locator("main form button[type=submit], main form input[type=submit]").first.click()
    expect(page.locator(".js-plotly-plot")).to_have_count(6, timeout=15000)
    expect(page.locator("button[data-copy='recruitment-link']")).to_be_visible()
    expect(page.locator("td[data-count='completed']")).to_have_text("1")

    complete(study, "second")
    # The page fetches dashboard.json every 15 seconds and swaps the tables in.
    expect(page.locator("td[data-count='completed']")).to_have_text("2", timeout=25000)
    expect(page.locator(".js-plotly-plot")).to_have_count(6)
    assert errors == []
    page.close()
