"""A researcher starts a pseudo-harmful job in Chromium: the form's errors by field, a queued
job's bars, then (the workers' part run inline) the rounds, ranked candidates, duplicates and
the verification task; axe-clean within the page's CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from modellab.models import PseudoHarmfulJob
from modellab.pseudo_harmful.tasks import advance_pseudo_harmful_job
from tests.browser.axe import violations
from tests.browser.conftest import browser  # noqa: F401 (fixture)
from tests.modellab.material.helpers import log_in, run_inline
from tests.modellab.pseudo_harmful.conftest import C, D

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_start_a_job_and_follow_it(browser: Browser, ada, world, live_server):  # noqa: F811
    page, blocked = log_in(browser, live_server, "/lab/")
    page.get_by_role("link", name="pseudo-harmful generation").click()
    expect(page.get_by_role("heading", name="Pseudo-harmful prompts", level=1)).to_be_visible()
    assert violations(page) == []

    page.get_by_label("Name of the job").fill("weeds")
    page.get_by_label("Generator model").select_option(label="writer")
    page.get_by_label("cautious").check()
    page.get_by_label("relaxed").check()
    page.get_by_label("Candidates per round").fill("4")
    page.locator("#id_rounds").fill("2")
    page.get_by_role("button", name="Start the job").click()
    # No words and no examples: the words field says so, nothing is stored.
    expect(page.locator("#id_words_error")).to_contain_text("harmful-looking word")
    assert violations(page) == []
    assert not PseudoHarmfulJob.objects.exists()

    page.get_by_label("Harmful-looking words or phrases").fill("kill\nshoot\nattack")
    page.get_by_label("Example prompts").fill("How do I kill a mosquito?")
    page.get_by_label("Samples per target (k)").fill("2")
    page.locator("#id_harm_judge").select_option(label="judge")
    page.get_by_role("button", name="Start the job").click()
    # Nothing consumes the queue here: the job waits with its bars.
    expect(page.locator("#ph-progress progress.ph-budget")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel the job")).to_be_visible()
    assert violations(page) == []

    job = PseudoHarmfulJob.objects.get()
    run_inline(advance_pseudo_harmful_job, job.pk)
    # The page's poll sees the job finished and reloads it.
    expect(page.locator("#ph-verification")).to_be_visible(timeout=20000)
    expect(page.locator("#ph-candidates tbody tr").first).to_contain_text(C)
    expect(page.locator("#ph-duplicates")).to_contain_text(D)
    expect(page.locator("#ph-rounds")).to_contain_text("missing 'prompt'")
    assert violations(page) == []
    page.get_by_role("link", name="← Pseudo-harmful prompts").click()
    expect(page.locator("#pseudo-harmful-jobs")).to_contain_text("weeds")
    assert violations(page) == []
    assert blocked == []
    page.close()
