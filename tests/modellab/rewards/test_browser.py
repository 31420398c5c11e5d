"""A researcher scores a study's responses with an LLM judge in Chromium: the form, then the
per-type table and figures and the agreement table, axe-clean and within the page's CSP."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, expect

from modellab.models import RewardRun
from studies.generation import services as generation_services
from studies.models import StudyMembership
from tests.browser.axe import violations
from tests.generation.chat_server import Reply

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def answer(request):
    content = request.body["messages"][1]["content"]
    score = -1 if "can't" in content or "cannot" in content else 2
    text = json.dumps({"score": score, "rationale": "scripted"})
    return Reply(json={"choices": [{"message": {"role": "assistant", "content": text}}]})


def test_rewards_page_scores_and_draws(
    browser: Browser, make_study, live_server, chat_server, eager_tasks
):
    study = make_study(launch=False)
    editor = get_user_model().objects.create_user("editor", password="pw-editor-123")
    StudyMembership.objects.create(study=study, user=editor, role="editor")
    chat_server.handler = answer
    generation_services.register_model(
        name="judge",
        backend="openai",
        backend_settings={"base_url": chat_server.url, "model": "j", "max_retries": 0},
        actor=editor,
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    blocked = []
    page.on(
        "console",
        lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.goto(f"{live_server.url}/accounts/login/?next=/studies/{study.slug}/lab/rewards/")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-123")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    expect(page.get_by_role("heading", name="Reward-model scores")).to_be_visible()
    assert violations(page) == []

    # A model that cannot be a reward model: the reason comes back, nothing is started.
    page.get_by_label("Model:", exact=True).select_option("judge")
    page.get_by_label("Reward model (sequence classification)").check()
    page.get_by_role("button", name="Start scoring").click()
    expect(page.get_by_role("alert")).to_contain_text("local transformers model")
    assert violations(page) == []
    assert not RewardRun.objects.exists()

    page.get_by_label("Model:", exact=True).select_option("judge")
    page.get_by_label("LLM judge (−3…+3)").check()
    page.get_by_role("button", name="Start scoring").click()
    expect(page.locator("#by-type")).to_be_visible(timeout=30000)
    expect(page.locator("#agreement")).to_be_visible()
    for name in ("bar-raw", "bar-z", "box-raw"):
        expect(page.locator(f"[data-figure='{name}'][data-drawn='true']")).to_be_visible(
            timeout=20000
        )
    assert RewardRun.objects.get().status == "done"
    assert violations(page) == []
    assert blocked == []
    page.close()
