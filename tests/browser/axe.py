"""axe-core accessibility checks for pages open in Playwright (axe is bundled: no network)."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

# Moderate included: the pages are clean at that level, and "moderate" holds rules a
# screen-reader user notices (a page without an <h1>, content outside every landmark).
FAILING_IMPACTS = frozenset({"moderate", "serious", "critical"})

# Only WCAG A/AA rules plus axe's best practices (landmarks, one <h1>, headings in order);
# the experimental and AAA rules are opinions the platform has not signed up to.
RUN_OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"],
    },
}

_axe = Axe()


def violations(page: Page, *, exclude: list[str] | None = None) -> list[str]:
    """Readable lines, one per failing node, for violations of FAILING_IMPACTS on ``page``.

    ``exclude``: CSS selectors of regions axe skips (each caller says why).
    """
    context = {"include": [["html"]], "exclude": [[s] for s in exclude]} if exclude else None
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe.axe_script)
    # Arguments go through Playwright's serialiser, not through a script built as a string.
    results = page.evaluate(
        "([context, options]) => axe.run(context || document, options)", [context, RUN_OPTIONS]
    )
    lines = []
    for violation in results["violations"]:
        if violation.get("impact") not in FAILING_IMPACTS:
            continue
        for node in violation["nodes"]:
            target = " ".join(str(t) for t in node.get("target", []))
            lines.append(
                f"[{violation['impact']}] {violation['id']}: {violation['help']} — {target}\n"
                f"    {node.get('html', '')[:200]}\n"
                f"    {(node.get('failureSummary') or '').replace(chr(10), ' ')[:300]}"
            )
    return lines


def assert_accessible(page: Page, *, exclude: list[str] | None = None) -> None:
    """Fail, listing every violation, when axe finds a moderate or worse problem on ``page``."""
    found = violations(page, exclude=exclude)
    assert not found, f"axe found {len(found)} problem(s) on {page.url}:\n" + "\n".join(found)
