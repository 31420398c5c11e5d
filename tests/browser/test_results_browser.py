"""A researcher opens a study's results in Chromium: Plotly (served by us) draws the charts."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from studies import analysis_jobs
from studies.models import StudyMembership
from tests.analysis.test_platform_simulation import simulate_participants

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_results_page_draws_charts_without_any_outside_request(
    browser: Browser, make_study, live_server
):
    study = make_study(target_participants=16)
    simulate_participants(study, 16, seed=5)
    owner = get_user_model().objects.create_user("owner", password="pw-owner-123", is_staff=True)
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    analysis_jobs.compute(analysis_jobs.request_analysis(study=study).pk)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith(live_server.url) else None,
    )
    page.goto(f"{live_server.url}/admin/login/?next=/studies/{study.slug}/results/")
    page.fill("#id_username", "owner")
    page.fill("#id_password", "pw-owner-123")
    page.click("input[type=submit]")
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=15000)
    assert page.evaluate("typeof window.Plotly") == "object"
    assert outside == [] or all(u.startswith("data:") for u in outside), outside
    page.close()
