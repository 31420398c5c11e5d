"""In Chromium, under the real Content-Security-Policy headers: no page has anything blocked,
and the charts, the API docs and the participant pages still work."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Browser, Page, expect

from studies import analysis_jobs
from studies.models import Study, StudyMembership
from tests.analysis.test_platform_simulation import simulate_participants
from tests.browser.conftest import browser  # noqa: F401 - the shared Chromium fixture
from tests.browser.test_participant_browser import join, pick_topic_if_asked

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-owner-123"

# Before any page script runs (Playwright's init scripts are not subject to the page's CSP):
# keep every violation the browser reports, to read back before leaving the page.
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    `${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`
  );
});
"""


class ViolationWatch:
    """Every CSP violation a page reports: its events and the console's "Refused to …" lines."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.found: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.found.append(f"page error: {error}"))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.found.append(f"{self.page.url}: {message.text}")

    def check(self) -> None:
        events = self.page.evaluate("window.__cspViolations || []")
        self.found.extend(f"{self.page.url}: {event}" for event in events)
        assert self.found == [], "\n".join(self.found)


def sign_in(page: Page, base_url: str, next_path: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next={next_path}")
    page.fill("#id_username", "owner")
    page.fill("#id_password", PASSWORD)
    page.locator("main form button[type=submit]").click()


def charts_drew(page: Page, count: int | None = None) -> None:
    plots = page.locator(".js-plotly-plot")
    if count is None:
        expect(plots.first).to_be_visible(timeout=20000)
    else:
        expect(plots).to_have_count(count, timeout=20000)
    # Drawn, not just a container: Plotly's SVG with its bars and markers (.point) inside.
    expect(page.locator(".js-plotly-plot svg.main-svg").first).to_be_attached()
    expect(page.locator(".js-plotly-plot .point").first).to_be_attached(timeout=20000)


@pytest.fixture
def analysed_study(make_study) -> Study:
    study = make_study(target_participants=16)
    simulate_participants(study, 16, seed=5)
    owner = get_user_model().objects.create_superuser("owner", password=PASSWORD)
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    analysis_jobs.compute(analysis_jobs.request_analysis(study=study).pk)
    return study


def test_researcher_pages_draw_their_charts_with_nothing_blocked(
    browser: Browser,  # noqa: F811
    analysed_study,
    live_server,
):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = ViolationWatch(page)
    slug = analysed_study.slug

    sign_in(page, live_server.url, f"/studies/{slug}/results/")
    expect(page.get_by_role("heading", name="Figures")).to_be_visible()
    charts_drew(page)
    watch.check()

    page.goto(f"{live_server.url}/studies/{slug}/")
    charts_drew(page, 6)
    watch.check()

    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("RefusalLab API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    watch.check()

    study_admin = f"/admin/studies/study/{analysed_study.pk}/change/"
    for path in ("/admin/", "/admin/studies/study/", study_admin):
        page.goto(f"{live_server.url}{path}")
        expect(page.locator("#site-name")).to_be_visible()
        watch.check()
    page.close()


def test_participant_pages_run_their_script_with_nothing_blocked(
    browser: Browser,  # noqa: F811
    make_study,
    live_server,
):
    make_study()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watch = ViolationWatch(page)
    join(page, live_server.url, "csp-participant")
    pick_topic_if_asked(page)
    expect(page.locator("form.rating-form label.point").first).to_be_visible()
    # participant.js runs: a number key chooses a point on the first statement.
    page.keyboard.press("5")
    expect(page.locator("form.rating-form input[type=radio]:checked")).to_have_count(1)
    watch.check()
    page.close()
