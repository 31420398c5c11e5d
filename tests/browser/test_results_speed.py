"""The results page as production serves it (gunicorn, DEBUG off, collected, hashed and
gzip-compressed static files): plotly.js is compressed and cached, the headline is in the HTML
and the charts are drawn one by one after it. Measures the time from navigation to the
headline and to the first chart (written to results_timing.json; not asserted).

The figure in bench/README.md comes from:

    .venv/bin/pytest -p no:xdist -s tests/browser/test_results_speed.py
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from playwright.sync_api import Browser, expect

from studies import analysis_jobs
from studies.models import AnalysisResult, StudyMembership
from tests.analysis.test_platform_simulation import simulate_participants
from tests.browser.axe import assert_accessible
from tests.workers import worker_database_url

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent.parent
PLOTLY = "vendor/plotly/plotly.min.js"
# Generous bounds on start-up for a busy machine (they bound waiting, they time nothing).
START_BOUND_S = 120
# Records the moment (performance.now(), ms since navigation started) the headline is in the
# document and the first chart has been drawn (results.js sets data-drawn).
TIMING_SCRIPT = """
window.__results_timing = {};
new MutationObserver(function () {
  var t = window.__results_timing;
  if (t.headline === undefined && document.querySelector('#findings li, #findings p')) {
    t.headline = performance.now();
  }
  if (t.first_chart === undefined && document.querySelector('.results-plot[data-drawn]')) {
    t.first_chart = performance.now();
  }
}).observe(document, {subtree: true, childList: true, attributes: true});
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _production_env(static_root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        SECRET_KEY="production-like-test-secret-" + "x" * 30,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback; everything else as production.
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        STATIC_ROOT=str(static_root),
        DATABASE_URL=worker_database_url(),
    )
    return env


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory) -> Path:
    """collectstatic as a deploy runs it: hashed names, gzip copies, the manifest."""
    root = tmp_path_factory.mktemp("static")
    env = _production_env(root)
    env["DATABASE_URL"] = "sqlite:///" + str(root / "unused.sqlite3")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=600,
    )
    return root


@pytest.fixture
def production_server(collected_static):
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            # One worker: the second view then finds the figures it built for the first.
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=_production_env(collected_static),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_BOUND_S
    while True:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            httpx.get(f"{url}/accounts/login/", timeout=10)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline, "gunicorn did not answer"
            time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.stderr.close()


def _measure(page, url: str) -> dict:
    """Navigate to ``url`` and time the headline and the first chart (ms since navigation)."""
    started = time.perf_counter()
    page.goto(url, wait_until="commit")
    expect(page.locator("#findings")).to_be_visible(timeout=60_000)
    headline_wall = time.perf_counter() - started
    first_chart = page.locator(".results-plot").first
    expect(first_chart).to_have_attribute("data-drawn", "true", timeout=60_000)
    expect(first_chart.locator(".main-svg").first).to_be_visible()
    chart_wall = time.perf_counter() - started
    in_page = page.evaluate("window.__results_timing")
    nav = page.evaluate(
        "(() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {html_received_ms: n.responseEnd, dom_content_loaded_ms:"
        " n.domContentLoadedEventEnd, html_transfer_bytes: n.transferSize}; })()"
    )
    scripts = page.evaluate(
        "performance.getEntriesByType('resource').filter(r => r.name.includes('plotly'))"
        ".map(r => ({name: r.name, transfer_bytes: r.transferSize,"
        " decoded_bytes: r.decodedBodySize, ms: r.duration}))"
    )
    return {
        "headline_ms": round(in_page.get("headline", float("nan")), 1),
        "first_chart_ms": round(in_page.get("first_chart", float("nan")), 1),
        "headline_wall_s": round(headline_wall, 3),
        "first_chart_wall_s": round(chart_wall, 3),
        "navigation": nav,
        "plotly": scripts,
    }


def test_plotly_is_served_compressed_and_cacheable(collected_static, production_server):
    """It once went out as 4.8 MB, uncompressed, on every results page."""
    manifest = json.loads((collected_static / "staticfiles.json").read_text())
    hashed = manifest["paths"][PLOTLY]
    assert hashed != PLOTLY
    with httpx.stream(
        "GET", f"{production_server}/static/{hashed}", headers={"Accept-Encoding": "gzip"}
    ) as response:
        sent = sum(len(chunk) for chunk in response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    cache = response.headers["cache-control"]
    assert "immutable" in cache and int(cache.split("max-age=")[1].split(",")[0]) >= 31536000
    assert sent < 2_000_000  # 4.8 MB raw


@pytest.mark.long_running
def test_headline_then_charts_with_production_settings(
    browser: Browser, make_study, production_server, tmp_path
):
    study = make_study(target_participants=16)
    simulate_participants(study, 16, seed=5)
    # Hashed the production way: gunicorn checks it, without the tests' fast hasher.
    owner = get_user_model().objects.create_user("speed-owner")
    owner.password = make_password("pw-speed-123", hasher="pbkdf2_sha256")
    owner.save(update_fields=["password"])
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    analysis_jobs.compute(AnalysisResult.objects.create(study=study, inclusion="included").pk)

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{production_server}/accounts/login/")
    page.fill("input[name=username]", "speed-owner")
    page.fill("input[name=password]", "pw-speed-123")
    page.click("form [type=submit]")
    page.wait_for_load_state()
    page.add_init_script(TIMING_SCRIPT)
    results_url = f"{production_server}/studies/{study.slug}/results/"
    # First view: the server builds the page's figures (then kept per process) and the
    # browser fetches plotly.js; second view: a researcher coming back (both cached).
    timing = {"first_view": _measure(page, results_url), "second_view": _measure(page, results_url)}
    out = tmp_path / "results_timing.json"
    out.write_text(json.dumps(timing, indent=2))
    print(f"\nresults page timing ({out}):\n{json.dumps(timing, indent=2)}")
    scripts = timing["first_view"]["plotly"]

    # The headline is HTML, never waiting for a script; plotly.js is deferred.
    assert page.locator("script[src*='plotly'][defer]").count() == 1
    assert page.locator("script:not([src]):not([type='application/json'])").count() == 0
    assert all(s["transfer_bytes"] < s["decoded_bytes"] for s in scripts if s["transfer_bytes"])
    expect(page.locator(".results-plot[data-drawn]")).to_have_count(
        page.locator(".results-plot").count(), timeout=60_000
    )
    assert_accessible(page)
    context.close()
