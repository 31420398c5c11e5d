"""Human coding in Chromium: a researcher sets up a task and invites three coders, who sign in
and code every item through the real pages (mouse, keyboard, a phone); the results page then
shows the agreement the independent implementations compute from the stored codes."""

from __future__ import annotations

import csv
import re
from itertools import combinations
from pathlib import Path

import krippendorff
import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

from annotation.coding import selectors
from annotation.coding.models import CodingAssignment, CodingItem, CodingTask
from modellab.classifiers.labels import HARMFULNESS_LABELS, INTENT_LABELS
from tests.browser.axe import violations
from tests.browser.conftest import browser  # noqa: F401 - the Chromium fixture
from tests.coding.conftest import HARMFULNESS_ITEMS, INTENT_ITEMS, PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LABELS = ("full_compliance", "full_refusal", "partial_refusal")
NAMES = {"full_compliance": "Full compliance", "full_refusal": "Full refusal"}
NAMES["partial_refusal"] = "Partial refusal"
# Each coder's code for the items at positions 1-4: they agree on some, not all.
PLAN = {
    "ana": ["full_refusal", "full_refusal", "partial_refusal", "full_compliance"],
    "ben": ["full_refusal", "partial_refusal", "partial_refusal", "full_compliance"],
    "cem": ["full_refusal", "full_refusal", "full_compliance", "full_compliance"],
}


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    expect(page.get_by_role("heading", name="RefusalLab", exact=True)).to_be_visible()


def choose_with_keyboard(page: Page, label: str, labels: tuple[str, ...] = LABELS) -> None:
    """Only keys: into the radio group, arrows to the category, Tab to the button, Enter."""
    index = labels.index(label)
    page.locator("input[name=label]").first.focus()
    if index == 0:
        page.keyboard.press("Space")
    for _ in range(index):
        page.keyboard.press("ArrowDown")
    expect(page.locator(f"input[name=label][value={label}]")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save and continue")).to_be_focused()
    with page.expect_navigation():
        page.keyboard.press("Enter")


def code_everything(page: Page, task: CodingTask, username: str, *, keyboard: bool) -> None:
    positions = {i.response_text: i.position for i in CodingItem.objects.filter(task=task)}
    page.get_by_role("link", name="your coding tasks").click()
    expect(page.get_by_role("heading", name="My coding tasks")).to_be_visible()
    assert violations(page) == []
    page.get_by_role("link", name=f"Code items of {task.title}").click()
    seen = []
    while page.locator("input[name=label]").count():
        response = page.locator(".message.assistant div").inner_text().strip()
        position = positions[response]
        if not seen:
            assert violations(page) == []
            # Reopening the page shows the same item (the claim is kept, not doubled).
            page.reload()
            assert page.locator(".message.assistant div").inner_text().strip() == response
        seen.append(position)
        label = PLAN[username][position - 1]
        if keyboard:
            choose_with_keyboard(page, label)
        else:
            page.get_by_label(NAMES[label]).check()
            with page.expect_navigation():
                page.get_by_role("button", name="Save and continue").click()
    expect(page.get_by_role("heading", name="Nothing left for you to code")).to_be_visible()
    expect(page.get_by_text("you coded 4 items")).to_be_visible()
    assert violations(page) == []
    assert sorted(seen) == [1, 2, 3, 4]


def test_three_coders_code_a_task_and_the_results_match_independent_statistics(
    browser: Browser,  # noqa: F811
    natural_study,
    user_factory,
    live_server,
    tmp_path: Path,
):
    study, ada = natural_study(queries=4)
    for name in PLAN:
        user_factory(name)
    base = live_server.url

    # The researcher creates the task and invites the coders, all on the pages.
    researcher = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(researcher, base, "ada")
    researcher.goto(f"{base}/coding/")
    assert violations(researcher) == []
    researcher.get_by_role("link", name="New coding task").click()
    assert violations(researcher) == []
    researcher.get_by_label("Title").fill("Refusal types of model-a")
    researcher.get_by_label("Study whose natural responses are coded").select_option(study.slug)
    researcher.get_by_label("model-a").check()
    researcher.get_by_label("Benign scenario").uncheck()
    researcher.get_by_label("Malicious scenario").uncheck()
    researcher.get_by_label("Three-way").check()
    researcher.get_by_label("Coders per item (k)").fill("3")
    researcher.get_by_role("button", name="Create the task").click()
    expect(researcher.get_by_role("heading", name="Refusal types of model-a")).to_be_visible()
    task = CodingTask.objects.get()
    assert task.items.count() == 4 and task.overlap == 3
    for name in PLAN:
        researcher.get_by_label("Username of an existing account").fill(name)
        researcher.get_by_role("button", name="Invite", exact=True).click()
        expect(researcher.get_by_text(f"'{name}' is invited to code.")).to_be_visible()
    assert violations(researcher) == []

    # Three coders, each in a browser of their own: mouse, keyboard, a phone.
    setups = {
        "ana": ({"viewport": {"width": 1280, "height": 900}}, False),
        "ben": ({"viewport": {"width": 1280, "height": 900}}, True),
        "cem": ({"viewport": {"width": 390, "height": 844}, "is_mobile": True}, False),
    }
    for name, (options, keyboard) in setups.items():
        context = browser.new_context(**options)
        page = context.new_page()
        sign_in(page, base, name)
        code_everything(page, task, name, keyboard=keyboard)
        # A coder cannot reach the researcher's pages of the task.
        assert page.goto(f"{base}/coding/{task.pk}/").status == 404
        assert page.goto(f"{base}/studies/{study.slug}/").status == 404
        context.close()

    # Independent computations from the stored codes.
    stored = list(CodingAssignment.objects.filter(task=task, answered_at__isnull=False))
    assert len(stored) == 12
    codes: dict[int, dict[str, str]] = {}
    for a in stored:
        codes.setdefault(a.item_id, {})[a.coder.username] = a.label
    assert {
        name: [codes[i.pk][name] for i in task.items.order_by("position")] for name in PLAN
    } == PLAN
    items = sorted(codes)
    coders = sorted(PLAN)
    alpha = krippendorff.alpha(
        reliability_data=[[LABELS.index(codes[i][c]) for i in items] for c in coders],
        level_of_measurement="nominal",
    )
    table, _ = aggregate_raters(
        np.array([[LABELS.index(codes[i][c]) for c in coders] for i in items])
    )
    fleiss = fleiss_kappa(table)

    researcher.reload()
    expect(researcher.locator("#progress-text")).to_have_text("12 of 12 codes (100%)")
    assert violations(researcher) == []
    shown = researcher.locator("[data-stat=alpha]").get_attribute("data-value")
    assert float(shown) == pytest.approx(alpha, abs=1e-12)
    shown = researcher.locator("[data-stat=fleiss]").get_attribute("data-value")
    assert float(shown) == pytest.approx(fleiss, abs=1e-12)
    for a, b in combinations(coders, 2):
        pair = np.zeros((3, 3))
        for i in items:
            pair[LABELS.index(codes[i][a]), LABELS.index(codes[i][b])] += 1
        cell = researcher.locator(f"[data-pair='{a}|{b}'] [data-stat=kappa]")
        assert float(cell.get_attribute("data-value")) == pytest.approx(
            cohens_kappa(pair).kappa, abs=1e-12
        )
        expect(cell).to_have_text(f"{cohens_kappa(pair).kappa:.4f}")

    # The CSV holds every stored code.
    with researcher.expect_download() as download:
        researcher.get_by_role("link", name="Download every code (CSV)").click()
    path = tmp_path / "codes.csv"
    download.value.save_as(path)
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert sorted((int(r["item_position"]), r["coder"], r["label"]) for r in rows) == sorted(
        (position, name, label)
        for name, labels in PLAN.items()
        for position, label in enumerate(labels, 1)
    )

    # A coder account made on the task page: its owner sets a password through the one-time
    # link, signs in and finds the task (nothing left: every item has its k codes).
    researcher.get_by_label("Username", exact=True).fill("dan")
    researcher.get_by_role("button", name="Create and invite").click()
    message = researcher.get_by_text("Account 'dan' created and invited").inner_text()
    link = re.search(r"https?://\S+", message).group(0)
    assert violations(researcher) == []
    researcher.close()
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = context.new_page()
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(PASSWORD + "-dan")
    page.get_by_label("New password confirmation").fill(PASSWORD + "-dan")
    page.get_by_role("button").last.click()
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", "dan")
    page.fill("#id_password", PASSWORD + "-dan")
    page.locator("form button[type=submit], form input[type=submit]").last.click()
    page.get_by_role("link", name="your coding tasks").click()
    page.get_by_role("link", name=f"Code items of {task.title}").click()
    expect(page.get_by_role("heading", name="Nothing left for you to code")).to_be_visible()
    # An account made to code sees none of the researcher coding pages.
    assert page.goto(f"{base}/coding/").status == 404
    context.close()


# Issue 11: the verdict each source key gets from the one coder of the material tasks below.
VERDICTS = {"q1-benign": "benign", "q1-malicious": "malicious", "q2-benign": "ambiguous"}
VERDICTS |= {"p1": "harmless", "p2": "controversial"}


def test_a_coder_verifies_generated_material_with_the_keyboard_only(
    browser: Browser,  # noqa: F811
    make_verification_task,
    user_factory,
    live_server,
):
    """Intent (scenario above the request) on a desktop, harmfulness (prompt and definitions)
    on a phone, both answered with keys only; the researcher's outcome table then shows them."""
    ben = user_factory("ben")
    intent = make_verification_task(scheme="intent", overlap=1, coders=[ben])
    harm = make_verification_task(scheme="harmfulness", overlap=1, coders=[ben], owner=intent.owner)
    base = live_server.url
    keys = {scenario: key for key, scenario, _ in INTENT_ITEMS}
    keys |= {prompt: key for key, prompt in HARMFULNESS_ITEMS}
    requests = {key: request for key, _, request in INTENT_ITEMS}

    for task, labels, viewport in (
        (intent, INTENT_LABELS, {"width": 1280, "height": 900}),
        (harm, HARMFULNESS_LABELS, {"width": 390, "height": 844}),
    ):
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        sign_in(page, base, "ben")
        page.goto(f"{base}/code/{task.pk}/")
        seen = []
        while page.locator("input[name=label]").count():
            if task is intent:
                expect(page.get_by_role("heading", name="Scenario")).to_be_visible()
                key = keys[page.locator("#item-context").inner_text().strip()]
                expect(page.locator("#item-prompt")).to_have_text(requests[key])
                question = (
                    "Reading the scenario, is the intent behind this request benign, "
                    "malicious or ambiguous?"
                )
            else:
                expect(page.get_by_role("heading", name="Scenario")).to_have_count(0)
                key = keys[page.locator("#item-prompt").inner_text().strip()]
                expect(page.get_by_text("Reasonable people disagree")).to_be_visible()
                question = "Is this prompt harmless, controversial or harmful?"
            expect(page.get_by_role("group", name=question)).to_be_visible()
            if not seen:
                assert violations(page) == []
            seen.append(key)
            choose_with_keyboard(page, VERDICTS[key], labels)
        expect(page.get_by_role("heading", name="Nothing left for you to code")).to_be_visible()
        assert sorted(seen) == sorted(task.items.values_list("source_key", flat=True))
        context.close()

    for task in (intent, harm):
        outcomes = selectors.verification_outcomes(task)
        assert {k: o.majority for k, o in outcomes.items()} == {k: VERDICTS[k] for k in outcomes}
        assert all(o.complete and not o.tie for o in outcomes.values())

    researcher = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(researcher, base, "ada")
    researcher.goto(f"{base}/coding/{intent.pk}/")
    expect(researcher.get_by_role("heading", name="Outcome per item")).to_be_visible()
    for key in ("q1-benign", "q1-malicious", "q2-benign"):
        cell = researcher.locator(f"#outcome-table tr[data-key='{key}'] [data-outcome]")
        expect(cell).to_have_attribute("data-outcome", VERDICTS[key])
    assert violations(researcher) == []
    researcher.close()
