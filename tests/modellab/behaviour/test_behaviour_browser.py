"""A researcher classifies two models' natural responses in Chromium: the form, a queued run's
progress fed from the database, then the stacked bars and tables, axe-clean within the CSP."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from modellab.behaviour import services
from modellab.behaviour.tasks import dispatch_classification_run
from modellab.models import ClassificationRun
from studies.models import StudyMembership
from tests.browser.axe import violations
from tests.browser.conftest import browser  # noqa: F401 (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_behaviour_page_classifies_and_draws_the_bars(
    browser: Browser,  # noqa: F811
    natural_study,
    live_server,
):
    study, (alpha, _beta) = natural_study
    owner = get_user_model().objects.create_user("ada", password="pw-ada-123")
    StudyMembership.objects.create(study=study, user=owner, role="owner")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw-ada-123")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.get_by_role("link", name="Model behaviour").first.click()
    expect(page.get_by_role("heading", name="Model behaviour", level=1)).to_be_visible()
    assert violations(page) == []

    # A bad choice comes back next to its field, still accessible, nothing started.
    page.get_by_label("alpha").check()
    page.get_by_label("Five-way: the five response types").check()
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#id_scheme_error")).to_be_visible()
    assert violations(page) == []
    assert not ClassificationRun.objects.exists()

    # Tasks run inline here, so the run is done when the page comes back.
    page.get_by_label("Three-way: full compliance, full refusal, partial refusal").check()
    page.get_by_label("beta").check()
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#behaviour-summary")).to_contain_text("96 of 96 responses classified")
    for model in ("alpha", "beta"):
        drawn = page.locator(f"[data-figure='model-{model}'][data-drawn='true']")
        expect(drawn).to_be_visible(timeout=20000)
        expect(page.locator(f"#table-model-{model}")).to_be_visible()
    assert violations(page) == []

    # A queued run shows its progress bar, and the page reloads itself when it is done.
    queued = services.start_classification_run(
        study=study,
        models=[alpha],
        classifier="string_match",
        scheme="three_way",
        phrases={"window": 40},
        actor=owner,
        dispatch=False,
    )
    page.goto(f"{live_server.url}/studies/{study.slug}/lab/behaviour/{queued.pk}/")
    expect(page.locator("#behaviour-progress progress")).to_be_visible()
    expect(page.locator("#behaviour-progress")).to_contain_text("0 of 48 responses classified")
    assert violations(page) == []
    dispatch_classification_run.apply(args=[queued.pk])
    expect(page.locator("#behaviour-summary")).to_contain_text("48 of 48", timeout=20000)
    expect(page.locator("[data-figure='model-alpha'][data-drawn='true']")).to_be_visible(
        timeout=20000
    )
    assert blocked == []
    page.close()
