"""A researcher imports the PHTest sample and runs the benchmark in Chromium: the forms, a
queued run's progress fed from the database, then each model's bars and the table, axe-clean
within the page's CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from config.celery import app
from modellab.false_refusal.tasks import dispatch_false_refusal_run
from modellab.models import FalseRefusalRun, PromptSet
from studies.generation import services as generation_services
from tests.browser.axe import violations
from tests.browser.conftest import browser  # noqa: F401 (fixture)
from tests.generation.chat_server import Reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def refuse_kill(request) -> Reply:
    prompt = request.body["messages"][-1]["content"].lower()
    text = "I cannot help with that." if "kill" in prompt else "Sure, here is how."
    return Reply(json={"choices": [{"message": {"role": "assistant", "content": text}}]})


def test_import_run_and_read_the_rates(
    browser: Browser,  # noqa: F811
    ada,
    chat_server,
    phtest_sample,
    live_server,
    tmp_path,
):
    chat_server.handler = refuse_kill
    generation_services.register_model(
        name="loopback",
        backend="openai",
        backend_settings={"base_url": chat_server.url, "model": "m", "max_retries": 0},
        actor=ada,
    )
    sample = tmp_path / "phtest-sample.csv"
    sample.write_bytes(phtest_sample)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/lab/false-refusal/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "pw-ada-123")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    expect(page.get_by_role("heading", name="False refusal", level=1)).to_be_visible()
    assert violations(page) == []

    # A file without the mapped columns: the problem is shown, nothing stored, still accessible.
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt\nhow to kill time\n", encoding="utf-8")
    page.get_by_label("CSV or JSONL file").set_input_files(str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#import-errors")).to_contain_text("no column 'Request'")
    assert violations(page) == []
    assert not PromptSet.objects.exists()

    page.get_by_label("Name of the prompt set").fill("phtest-sample")
    page.get_by_label("CSV or JSONL file").set_input_files(str(sample))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#provenance")).to_contain_text("phtest-sample.csv")
    assert violations(page) == []

    page.get_by_role("link", name="← False refusal").click()
    expect(page.locator("#prompt-sets")).to_contain_text("phtest-sample")
    assert violations(page) == []  # with the start form and the list of sets
    page.get_by_label("loopback").check()
    page.get_by_role("button", name="Start the run").click()
    # Nothing consumes the queue here: the run waits with its progress bar.
    expect(page.locator("#frr-progress progress")).to_be_visible()
    assert violations(page) == []

    run = FalseRefusalRun.objects.get()
    # What the workers do (inline here); the page's poll then reloads it.
    previous = app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES
    app.conf.CELERY_TASK_ALWAYS_EAGER = app.conf.CELERY_TASK_EAGER_PROPAGATES = True
    try:
        dispatch_false_refusal_run.apply(args=[run.pk])
    finally:
        app.conf.CELERY_TASK_ALWAYS_EAGER, app.conf.CELERY_TASK_EAGER_PROPAGATES = previous
    expect(page.locator("#frr-summary")).to_be_visible(timeout=20000)
    expect(page.locator("[data-figure='frr-loopback'][data-drawn='true']")).to_be_visible(
        timeout=20000
    )
    expect(page.locator("[data-figure='frr-loopback'] .main-svg").first).to_be_visible()
    expect(page.locator("#frr-table")).to_contain_text("harmless")
    assert violations(page) == []
    page.get_by_role("link", name="← False refusal").click()
    expect(page.locator("#false-refusal-runs")).to_contain_text(f"Run {run.pk}")
    assert violations(page) == []
    assert blocked == []
    page.close()
