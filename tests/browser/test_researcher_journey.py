"""A new researcher goes from an empty account to a launched, watched and paused study in
Chromium, with no file but the stimuli; a participant takes part in a second browser; and
axe-core checks every page either of them sees. What was built downloads as spec + stimuli
and imports back equal."""

from __future__ import annotations

import csv
import dataclasses
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.apps import apps
from playwright.sync_api import Browser, Page, expect

from annotation.models import Participant, Slot
from studies import selectors, services
from studies.accounts import create_researcher, password_set_path
from studies.models import AuditEvent, ResponseVariant, Study
from studies.spec import load_spec
from studies.stimuli_file import parse_stimuli
from tests.browser.axe import assert_accessible
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium fixture

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EXAMPLE_STIMULI = (
    Path(__file__).resolve().parents[2] / "examples" / "refusal-perception" / "stimuli.csv"
)
# Generous: a busy CI machine renders a page in seconds, not milliseconds.
WAIT_MS = 30_000
PASSWORD = "a-long-Pass-phrase-42"
AGREE5 = "1: Strongly disagree\n3: Neutral\n5: Strongly agree"
AGREE7 = "1: Strongly disagree\n4: Neutral\n7: Strongly agree"


def write_stimuli(path: Path, *, change: dict[tuple[str, str], str]) -> Path:
    """The first four queries of the example study, with ``change[(query_id, column)]``."""
    with EXAMPLE_STIMULI.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = [row for row in reader if row["query_id"] in {"q01", "q02", "q03", "q04"}]
        columns = reader.fieldnames
    for (query_id, column), value in change.items():
        next(r for r in rows if r["query_id"] == query_id)[column] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def stimulus_texts(study: Study) -> dict:
    """Every query's texts, scenarios and approved responses: what a copy must carry over."""
    return {
        query.query_id: (
            query.text,
            query.category,
            query.topic,
            sorted(query.scenarios.values_list("motivation", "text")),
            sorted(
                query.variants.filter(review_status="approved").values_list("response_type", "text")
            ),
        )
        for query in study.queries.all()
    }


def participant_side_rows() -> dict[str, int]:
    """Rows of every participant-side table, claimed slots and the audit log."""
    counts = {m.__name__: m.objects.count() for m in apps.get_app_config("annotation").get_models()}
    counts["claimed slots"] = Slot.objects.exclude(status="free").count()
    counts["AuditEvent"] = AuditEvent.objects.count()
    return counts


def saved(page: Page, text: str = "saved") -> None:
    """The page says ``text`` in its messages; else the failure shows the page's errors."""
    problems = page.locator(".errorlist, .field-error, .error-summary")
    if problems.count():
        details = "\n".join(problems.all_inner_texts())
        raise AssertionError(f"{page.url} shows problems instead of {text!r}:\n{details}")
    expect(page.locator(".messages")).to_contain_text(text, timeout=WAIT_MS)


def press(page: Page, name: str | re.Pattern) -> None:
    """Click the button and wait for the page it loads (a full, server-rendered page)."""
    with page.expect_navigation(timeout=WAIT_MS):
        page.get_by_role("button", name=name, exact=isinstance(name, str)).click()


def follow(page: Page, name: str | re.Pattern) -> None:
    with page.expect_navigation(timeout=WAIT_MS):
        page.get_by_role("link", name=name, exact=isinstance(name, str)).first.click()


def open_section(page: Page, base: str, section: str) -> None:
    page.goto(f"{base}/design/{section}/")
    assert_accessible(page)


def take_study(page: Page, *, done_heading: re.Pattern) -> list[str]:
    """Answer every page a participant sees, checking each with axe; the kinds seen, in order.

    Items get the middle of the scale; attention checks the first point, as their text asks.
    """
    seen: list[str] = []
    for _ in range(40):
        expect(page.locator("main")).to_be_visible(timeout=WAIT_MS)
        assert_accessible(page)
        if page.locator("#completion-code").count():
            seen.append("done")
            expect(page.get_by_role("heading", name=done_heading)).to_be_visible()
            return seen
        if page.get_by_role("heading", name="Information and consent").count():
            seen.append("consent")
            press(page, "I agree to take part")
        elif page.get_by_role("heading", name="Instructions").count():
            seen.append("instructions")
            press(page, "Start")
        elif page.locator("form.block-form").count():
            seen.append("block")
            expect(page.get_by_role("heading", name="About you")).to_be_visible()
            page.get_by_label("25–34").check()
            page.get_by_label(re.compile(r"Your answer \(at most 300 characters\)")).fill(
                "I use chatbots for work."
            )
            press(page, re.compile("^(Next|Finish)$"))
        elif page.locator("form.rating-form").count():
            attention = page.locator("section.conversation").count() == 0
            seen.append("attention" if attention else "item")
            point = 0 if attention else 2
            for fieldset in page.locator("form.rating-form [data-question]").all():
                fieldset.locator("label.point").nth(point).click()
            press(page, re.compile("^(Next|Finish)$"))
        else:
            raise AssertionError(f"unexpected page {page.url}:\n{page.content()[:3000]}")
    raise AssertionError("the study did not end within 40 pages")


@pytest.mark.long_running
def test_new_researcher_builds_launches_watches_and_pauses_a_study(
    browser: Browser,  # noqa: F811
    live_server,
    settings,
    tmp_path,
):
    settings.STIMULI_UPLOAD_DIR = tmp_path / "uploads"
    researcher = create_researcher(username="rita", email="rita@example.org")
    server = live_server.url
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # --- The one-time link: choose a password, then log in. ---------------------------
    page.goto(server + password_set_path(researcher))
    expect(page.get_by_role("heading", name="Choose a password")).to_be_visible()
    assert_accessible(page)
    page.locator("#id_new_password1").fill(PASSWORD)
    page.locator("#id_new_password2").fill(PASSWORD)
    press(page, "Set password")
    expect(page.get_by_role("heading", name="Password set")).to_be_visible()
    assert_accessible(page)
    follow(page, "Log in")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert_accessible(page)
    page.locator("#id_username").fill("rita@example.org")  # the e-mail works as well
    page.locator("#id_password").fill(PASSWORD)
    press(page, "Log in")
    assert_accessible(page)  # the landing page
    page.goto(f"{server}/studies/")
    expect(page.get_by_role("heading", name="Your studies")).to_be_visible()
    assert_accessible(page)

    # --- A new study from the form, no file. ------------------------------------------
    follow(page, "New study")
    expect(page.get_by_role("heading", name="New study")).to_be_visible()
    assert_accessible(page)
    page.locator("#id_start-title").fill("Refusals in the browser")
    page.locator("#id_start-slug").fill("journey")
    page.get_by_label(re.compile("Every response type within participants")).check()
    press(page, "Create study")
    expect(page.get_by_role("heading", name="Design of “Refusals in the browser”")).to_be_visible()
    saved(page, "created as a draft")
    assert_accessible(page)
    base = f"{server}/studies/journey"

    # Size: four participants keep the launch quick.
    open_section(page, base, "metadata")
    page.get_by_label("Target participants").fill("4")
    press(page, "Save")
    saved(page)

    # The texts, with their Markdown preview.
    open_section(page, base, "texts")
    press(page, "Preview")
    expect(page.get_by_role("heading", name="Preview (not saved yet)")).to_be_visible()
    assert_accessible(page)

    # Two factors, both within participants: 2 response types × 2 motivations, 4 items.
    open_section(page, base, "design")
    page.locator("#id_factor-0-levels").fill("direct_refusal\nfull_compliance")
    page.locator("#id_factor-1-assignment").select_option("within")
    page.locator("#id_items_per_participant").fill("4")
    press(page, "Save")
    saved(page)
    expect(page.locator("#id_factor-1-assignment")).to_have_value("within")

    # Three Likert questions: the starting one, one filled in, one added.
    open_section(page, base, "questions")
    page.locator("#id_question-1-key").fill("appropriateness")
    page.locator("#id_question-1-construct").fill("ethical_judgment")
    page.locator("#id_question-1-text").fill("The response was appropriate.")
    page.locator("#id_question-1-points").fill("7")
    page.locator("#id_question-1-anchors").fill(AGREE7)
    press(page, "Add another question")
    page.locator("#id_question-2-key").fill("frustration")
    page.locator("#id_question-2-construct").fill("affect")
    page.locator("#id_question-2-text").fill("This response frustrated me.")
    page.locator("#id_question-2-points").fill("7")
    page.locator("#id_question-2-anchors").fill(AGREE7)
    page.locator("#id_question-2-reverse_coded").check()
    assert_accessible(page)
    press(page, "Save")
    saved(page)

    # One attention check after the second item.
    open_section(page, base, "attention")
    page.locator("#id_check-0-key").fill("attention_1")
    page.locator("#id_check-0-text").fill("Please select 'Strongly disagree'.")
    page.locator("#id_check-0-points").fill("5")
    page.locator("#id_check-0-anchors").fill(AGREE5)
    page.locator("#id_check-0-correct").fill("1")
    page.locator("#id_check-0-after_item").fill("2")
    press(page, "Save")
    saved(page)

    # A demographics block before the items: a single choice and an optional free text.
    page.goto(f"{base}/design/blocks/")
    expect(page.get_by_role("heading", name="Questionnaire blocks")).to_be_visible()
    assert_accessible(page)
    follow(page, "Add a block")
    assert_accessible(page)
    page.locator("#id_key").fill("demographics")
    page.locator("#id_title").fill("About you")
    page.locator("#id_intro").fill("A few questions about **you**.")
    page.locator("#id_placement").select_option("before")
    page.locator("#id_bq-0-key").fill("age_group")
    page.locator("#id_bq-0-type").select_option("single_choice")
    page.locator("#id_bq-0-text").fill("What is your age group?")
    page.locator("#id_bq-0-options").fill("18–24\n25–34\n35–44\n45 or older")
    page.locator("#id_bq-1-key").fill("ai_use")
    page.locator("#id_bq-1-type").select_option("free_text")
    page.locator("#id_bq-1-text").fill("What do you use AI chatbots for?")
    page.locator("#id_bq-1-required").uncheck()
    page.locator("#id_bq-1-max_length").fill("300")
    press(page, "Save")
    saved(page)
    expect(page.locator("main table")).to_contain_text("age_group")
    assert_accessible(page)

    for section in ("recruitment", "analysis"):
        open_section(page, base, section)
    page.goto(f"{base}/design/")
    overview = page.locator("main")
    expect(overview).to_contain_text("direct_refusal, full_compliance")
    expect(overview).to_contain_text("frustration")
    expect(overview).to_contain_text("attention_1")
    expect(overview).to_contain_text("About you")

    # --- Stimuli: a file with a bad row is refused with its line; then the good one. ---
    page.goto(f"{base}/stimuli/upload/")
    expect(page.get_by_role("heading", name="Upload stimuli")).to_be_visible()
    assert_accessible(page)
    bad = write_stimuli(tmp_path / "bad.csv", change={("q03", "query"): ""})
    page.get_by_label("Stimuli file (.csv or .jsonl)").set_input_files(bad)
    press(page, "Preview")
    problems = page.locator("ul.problems")
    expect(problems).to_contain_text("line 4 (query_id q03): column 'query' is empty")
    expect(page.get_by_role("button", name=re.compile("^Import"))).to_have_count(0)
    assert_accessible(page)
    assert not Study.objects.get(slug="journey").queries.exists()

    # q04 has no full compliance: that text comes later, generated, to be reviewed.
    good = write_stimuli(tmp_path / "good.csv", change={("q04", "full_compliance"): ""})
    page.get_by_label("Stimuli file (.csv or .jsonl)").set_input_files(good)
    press(page, "Preview")
    expect(page.get_by_role("heading", name="4 rows read")).to_be_visible()
    assert_accessible(page)
    press(page, "Import 4 queries")
    saved(page, "4 new")
    assert_accessible(page)  # the queries table
    follow(page, "q04")
    assert_accessible(page)

    study = Study.objects.get(slug="journey")
    generated = ResponseVariant.objects.create(
        query=study.queries.get(query_id="q04"),
        response_type="full_compliance",
        model_name="model-a",
        text="Here is the dialogue you asked for, with the swearing left in.",
        source=ResponseVariant.Source.GENERATED,
        review_status=ResponseVariant.ReviewStatus.GENERATED,
        provenance={"model": "model-a", "params": {"temperature": 0.3}, "prompt": []},
    )
    page.goto(f"{base}/")
    launch_blockers = page.locator("#launch-problems")
    expect(launch_blockers).to_contain_text(
        "query q04 has no approved response for: full_compliance"
    )
    assert_accessible(page)

    # --- Review: approve the generated text; nothing blocks the launch any more. ------
    follow(page, "Review texts")
    assert_accessible(page)
    page.locator(f"#select-{generated.pk}").check()
    press(page, "Approve selected")
    saved(page, "Approved 1 text(s).")
    expect(page.get_by_text("Nothing in the texts blocks the launch.")).to_be_visible()
    assert_accessible(page)

    page.goto(f"{base}/plan/")
    assert_accessible(page)

    # --- Preview as a participant: the whole study, and nothing is written. -----------
    page.goto(f"{base}/")
    expect(page.locator("#launch-problems")).to_have_count(0)
    before = participant_side_rows()
    follow(page, "Preview as a participant")
    assert_accessible(page)
    press(page, "Start the preview")
    seen = take_study(page, done_heading=re.compile(r"you have finished \(preview\)"))
    assert seen == [
        "consent",
        "instructions",
        "block",
        "item",
        "item",
        "attention",
        "item",
        "item",
        "done",
    ]
    expect(page.locator("#completion-code")).to_have_text(study.completion_code)
    assert participant_side_rows() == before

    # --- Launch, and read the recruitment link. ---------------------------------------
    page.goto(f"{base}/")
    follow(page, "Launch…")
    expect(page.get_by_role("heading", name=re.compile("^Launch: "))).to_be_visible()
    assert_accessible(page)
    press(page, "Launch")
    expect(page.locator("#study-status")).to_have_text("Live")
    assert_accessible(page)
    # The copy button puts the link on the clipboard, as a researcher pastes it into Prolific.
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("[data-copy-status='recruitment-link']")).to_have_text("Copied.")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link == page.locator("#recruitment-link").inner_text().strip()
    parts = urlsplit(link)
    params = dict(parse_qsl(parts.query))
    assert set(params) == {"PROLIFIC_PID", "STUDY_ID", "SESSION_ID"}
    entry = f"{server}{parts.path}"

    def link_for(pid: str) -> str:
        return f"{entry}?{urlencode({'PROLIFIC_PID': pid, 'STUDY_ID': 'st1', 'SESSION_ID': pid})}"

    # --- A participant, in a browser of their own. ------------------------------------
    participant_context = browser.new_context(viewport={"width": 390, "height": 844})
    participant_context.set_default_timeout(WAIT_MS)
    participant = participant_context.new_page()
    participant.on("pageerror", lambda exc: errors.append(str(exc)))
    participant.goto(link_for("prolific-1"))
    seen = take_study(participant, done_heading=re.compile("you have finished"))
    assert seen[:3] == ["consent", "instructions", "block"] and seen[-1] == "done"
    expect(participant.locator("#completion-code")).to_have_text(study.completion_code)
    participant_context.close()
    assert Participant.objects.get(study=study).status == Participant.Status.COMPLETED

    # --- The dashboard counts the completion. ------------------------------------------
    page.reload()
    expect(page.locator("td[data-count='completed']")).to_have_text("1")
    expect(page.locator(".js-plotly-plot")).to_have_count(6)
    assert_accessible(page)

    for name in ("Members", "Audit log", "Results and statistics"):
        page.goto(f"{base}/")
        follow(page, name)
        assert_accessible(page)
    expect(page.get_by_role("heading", level=1)).to_be_visible()

    # --- Pause: a new arrival sees the paused page. -----------------------------------
    page.goto(f"{base}/")
    follow(page, "Pause…")
    assert_accessible(page)
    press(page, "Pause")
    expect(page.locator("#study-status")).to_have_text("Paused")
    late_context = browser.new_context()
    late_context.set_default_timeout(WAIT_MS)
    late = late_context.new_page()
    late.goto(link_for("prolific-2"))
    expect(late.get_by_role("heading", name="This study is paused")).to_be_visible()
    assert_accessible(late)
    late_context.close()
    assert Participant.objects.filter(study=study).count() == 1

    # --- Round trip: the study built here, downloaded as spec + stimuli, imports equal. -----
    spec_text = page.request.get(f"{base}/spec.yaml").text()
    stimuli_csv = page.request.get(f"{base}/stimuli.csv").body()
    context.close()
    built = load_spec(spec_text)
    copy = services.import_study(
        spec=dataclasses.replace(built, slug="journey-copy"),
        stimuli=parse_stimuli(stimuli_csv, "stimuli.csv"),
    )
    assert dataclasses.replace(selectors.study_spec(copy), slug=built.slug) == built
    assert built == selectors.study_spec(study)
    assert stimulus_texts(copy) == stimulus_texts(study)
    assert errors == []
