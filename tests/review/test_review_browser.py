"""In Chromium: the review table's inline editor saves through the no-JavaScript edit page."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from studies.models import ResponseVariant
from tests.browser.conftest import browser  # noqa: F401 (the module-scoped Chromium)
from tests.review.conftest import add_members, generated_variant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_inline_edit_then_approve_in_the_table(
    browser: Browser,  # noqa: F811
    make_study,
    people,
    live_server,
):
    study = make_study(launch=False)
    add_members(study, people)
    variant = generated_variant(study, "q01", "redirection", "model-a")

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/review/?model=model-a")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-123")
    page.locator("main button[type=submit]").click()
    row = page.locator(f"#variant-{variant.pk}")
    expect(row).to_contain_text("model-a wrote this redirection")

    row.get_by_role("link", name="Edit").click()
    editor = row.locator("textarea")
    expect(editor).to_be_focused()
    editor.fill("A kinder redirection, edited in place.")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Saved the text of q01")
    expect(page.locator(f"#variant-{variant.pk}")).to_contain_text("edited in place")
    assert "model=model-a" in page.url

    page.locator(f"#select-{variant.pk}").check()
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator(".messages")).to_contain_text("Approved 1 text(s).")
    page.screenshot(path="/tmp/review-table.png", full_page=True)
    page.close()

    variant.refresh_from_db()
    assert variant.text == "A kinder redirection, edited in place."
    assert variant.review_status == ResponseVariant.ReviewStatus.APPROVED
    assert variant.provenance["edits"][0]["previous_text"].startswith("model-a wrote this")
    assert errors == []
