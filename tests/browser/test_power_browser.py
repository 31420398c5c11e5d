"""A researcher plans a draft study's sample size in Chromium: the form, the progress bar fed
from the database, then the table and the power curve, axe-clean and within the page's CSP."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from studies import power_jobs
from studies.models import PowerAnalysis, StudyMembership
from tests.browser.axe import violations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_power_page_runs_and_draws_the_curve(browser: Browser, make_study, live_server):
    study = make_study(launch=False)
    editor = get_user_model().objects.create_user("editor", password="pw-editor-123")
    StudyMembership.objects.create(study=study, user=editor, role="editor")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-123")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.get_by_role("link", name="Power planning").click()
    assert violations(page) == []

    # A bad value comes back next to its field, the page still accessible, nothing queued.
    page.get_by_label("Simulations per count").fill("3")
    page.get_by_role("button", name="Run the simulation").click()
    expect(page.locator("#id_simulations_error")).to_be_visible()
    assert violations(page) == []
    assert not PowerAnalysis.objects.exists()

    page.get_by_label("Participant counts").fill("16,32")
    page.get_by_label("Simulations per count").fill("10")
    page.get_by_role("button", name="Run the simulation").click()
    # No worker runs here: the run waits, queued, with its progress bar; still axe-clean.
    expect(page.locator("#power-progress progress")).to_be_visible()
    expect(page.locator("#power-progress")).to_contain_text("0 of 20 model fits")
    assert violations(page) == []

    power = PowerAnalysis.objects.get(study=study)
    power_jobs.compute(power.pk)  # what the worker runs; the page's poll then reloads it
    expect(page.locator("#power-table")).to_be_visible(timeout=20000)
    expect(page.locator("[data-figure='power'][data-drawn='true']")).to_be_visible(timeout=20000)
    expect(page.locator("[data-figure='power'] .main-svg").first).to_be_visible()
    assert violations(page) == []
    assert blocked == []
    page.close()
