"""A researcher starts a query–scenario job in Chromium, follows it, decides a tie, finalises
and adds the set to a draft study: every page axe-clean within its CSP."""

from __future__ import annotations

import dataclasses

import pytest
from playwright.sync_api import Browser, expect

from annotation.coding import services as coding_services
from modellab.models import QueryScenarioJob
from modellab.query_scenarios.tasks import dispatch_query_scenario_job
from studies import services as study_services
from tests.browser.axe import violations
from tests.browser.conftest import browser  # noqa: F401 (fixture)
from tests.modellab.material.helpers import log_in, run_inline
from tests.modellab.query_scenarios.test_pages_and_api import FORM

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_start_follow_verify_and_add_to_a_study(
    browser: Browser,  # noqa: F811
    ada,
    bob,
    loopback,
    live_server,
    every_type_spec,
):
    study_services.import_study(
        spec=dataclasses.replace(every_type_spec[0], slug="generated"), stimuli=None, actor=ada
    )
    page, blocked = log_in(browser, live_server, "/lab/")
    page.get_by_role("link", name="query–scenario generation").click()
    expect(page.get_by_role("heading", name="Query–scenario sets", level=1)).to_be_visible()
    assert violations(page) == []

    page.get_by_label("Name of the job").fill("browser-set")
    page.get_by_label("Generator model").select_option(label=str(loopback))
    page.get_by_label("Intent judge model").select_option(label=str(loopback))
    page.locator("#id_categories").fill(FORM["categories"])
    page.get_by_label("Topics per category").fill("weapons: guns")
    page.get_by_label("Seed examples (JSONL)").fill(FORM["examples"])
    page.get_by_label("Instances per round").fill("8")
    page.locator("#id_rounds").fill("2")
    page.get_by_label("Examples per round").fill("3")
    page.get_by_role("button", name="Start the job").click()
    expect(page.locator("#id_topics_error")).to_contain_text("no category named 'weapons'")
    assert violations(page) == []
    assert not QueryScenarioJob.objects.exists()
    page.get_by_label("Topics per category").fill(FORM["topics"])
    page.get_by_role("button", name="Start the job").click()
    expect(page.locator("#qs-progress progress")).to_be_visible()
    assert violations(page) == []

    # What the workers do (inline here); the page's poll then reloads it.
    job = QueryScenarioJob.objects.get()
    run_inline(dispatch_query_scenario_job, job.pk)
    expect(page.locator("#qs-summary")).to_contain_text("6 accepted by the judge", timeout=20000)
    expect(page.locator("#qs-candidates")).to_contain_text("read as ambiguous")
    expect(page.locator("#qs-candidates")).to_contain_text("same normalised text of #1")
    assert violations(page) == []

    job.refresh_from_db()
    task = job.verification_task
    first = job.candidates.filter(judge_accepted=True).order_by("position").first()
    tie = f"qs:{first.pk}:benign"
    for coder in (ada, bob):
        coding_services.invite_coder(task=task, username=coder.username, actor=ada)
        while (a := coding_services.next_assignment(task=task, coder=coder)) is not None:
            key = a.item.source_key
            label = "ambiguous" if key == tie and coder == bob else key.rsplit(":", 1)[1]
            coding_services.record_code(task=task, coder=coder, item_id=a.item_id, label=label)
    page.reload()
    expect(page.locator("fieldset.tie")).to_have_count(1)
    assert violations(page) == []
    page.get_by_role("button", name="Finalise the set").click()
    expect(page.locator(".messages, .error, [role=alert]").first).to_contain_text(tie)
    page.locator("fieldset.tie").get_by_label("benign").check()
    page.get_by_role("button", name="Finalise the set").click()
    expect(page.locator("#stimuli-csv")).to_be_visible()
    assert violations(page) == []
    page.get_by_label("Add to a draft study").select_option("generated")
    page.get_by_role("button", name="Add").click()
    expect(page.locator("#output-study")).to_contain_text("generated")
    assert violations(page) == []
    assert blocked == []
    page.close()
