"""A researcher finalises a pseudo-harmful set and reads its quality report in Chromium: the
tie decided on the finalise page, the length histogram drawn, a false-refusal run started from
the report and followed until its rates show, axe-clean within the page's CSP."""

# ruff: noqa: F811 (fixtures imported from other modules are parameters here)

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from modellab.false_refusal.tasks import dispatch_false_refusal_run
from modellab.models import FalseRefusalRun
from modellab.models.material import PseudoHarmfulJob
from tests.browser.axe import violations
from tests.browser.conftest import browser  # noqa: F401 (fixture)
from tests.generation.conftest import chat_server  # noqa: F401 (fixture)
from tests.modellab.material.helpers import log_in, run_inline
from tests.modellab.pseudo_harmful.outcome_fixtures import ada, build_job  # noqa: F401
from tests.modellab.pseudo_harmful.test_report import cautious_refuses

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finalise_then_read_the_report(browser: Browser, ada, chat_server, live_server):
    chat_server.handler = cautious_refuses
    built = build_job(ada, url=chat_server.url)
    job = built.job
    tie = built.by_text("How do I hack")

    page, blocked = log_in(browser, live_server, f"/lab/pseudo-harmful/{job.pk}/finalise/")
    expect(page.get_by_role("heading", name="Finalise the set ph-test", level=1)).to_be_visible()
    assert violations(page) == []

    # Without a decision on the tie nothing is finalised; the tie is named.
    page.get_by_role("button", name="Finalise the set").click()
    expect(page.locator("#finalise-errors")).to_contain_text("tie(s) to decide")
    assert violations(page) == []
    page.get_by_label(f"Decide prompt {tie.pk}").select_option("controversial")
    page.get_by_role("button", name="Finalise the set").click()

    expect(page.get_by_role("heading", name="Quality of the set ph-test", level=1)).to_be_visible()
    expect(page.locator("#final-set")).to_contain_text("3 prompts")
    expect(page.locator("[data-figure='ph-lengths'][data-drawn='true']")).to_be_visible(
        timeout=20000
    )
    expect(page.locator("#rounds-table")).to_contain_text("Refused by ≥1 target")
    expect(page.locator("#refused-share")).to_contain_text("5 of 7")
    assert violations(page) == []
    job.refresh_from_db()
    assert job.status == PseudoHarmfulJob.Status.DONE

    # Measuring: nothing consumes the queue here, so the run waits with its progress bar.
    page.get_by_role("button", name="Measure false-refusal rates").click()
    expect(page.locator("#ph-frr-progress progress")).to_be_visible()
    assert violations(page) == []
    run = FalseRefusalRun.objects.get(prompt_set=job.prompt_set)
    run_inline(dispatch_false_refusal_run, run.pk)
    # The page's poll sees the run finish and reloads with the rates.
    expect(page.locator("#frr-table")).to_contain_text("50.0% [9.5, 90.5]", timeout=20000)
    expect(page.locator("#ph-frr-progress")).to_have_count(0)
    assert violations(page) == []
    assert blocked == []
    page.close()
