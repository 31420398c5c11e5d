"""A database or broker outage gives a friendly 503 page (JSON under /api/), never a bare 500."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from django.conf import settings
from django.test import Client, override_settings

from tests.ops.conftest import CLOSED_PORT, ROOT, AppServer, assert_closed

FRIENDLY = "Your answers so far are saved"


def outage_client() -> Client:
    # A real browser gets the error page, not the exception the test client re-raises.
    return Client(raise_request_exception=False)


@pytest.mark.parametrize(
    "path",
    [
        "/ops-test/database-down/",
        "/ops-test/database-gone/",
        "/ops-test/broker-down/",
        "/ops-test/redis-down/",
    ],
)
@override_settings(ROOT_URLCONF="tests.ops.urls", DEBUG=False)
def test_outage_in_a_view_gives_the_friendly_503(path):
    response = outage_client().get(path)
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "no-store" in response["Cache-Control"]
    body = response.content.decode()
    assert FRIENDLY in body and "try again in a minute" in body
    assert 'href="/static/css/refusallab.css"' in body  # the platform's own look


@override_settings(
    ROOT_URLCONF="tests.ops.urls",
    DEBUG=False,
    MIDDLEWARE=["tests.ops.urls.SessionSaveFails", *settings.MIDDLEWARE],
)
def test_outage_in_middleware_gives_the_friendly_503():
    response = outage_client().get("/ops-test/fine/")
    assert response.status_code == 503
    assert FRIENDLY in response.content.decode()


@override_settings(ROOT_URLCONF="tests.ops.urls", DEBUG=False)
def test_api_outage_answers_503_json():
    response = outage_client().get("/api/ops-test/database-down/")
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert "try again in a minute" in response.json()["detail"]


@override_settings(ROOT_URLCONF="tests.ops.urls", DEBUG=False)
def test_a_plain_bug_is_still_a_500():
    response = outage_client().get("/ops-test/bug/")
    assert response.status_code == 500
    assert FRIENDLY not in response.content.decode()


def test_database_down_every_page_answers_503_for_real():
    """gunicorn, DEBUG off, DATABASE_URL at a port nothing listens on."""
    assert_closed(CLOSED_PORT)
    database_url = f"postgres://postgres@127.0.0.1:{CLOSED_PORT}/refusallab"
    with AppServer(8201, DATABASE_URL=database_url) as server:
        pages = [
            ("/s/refusal-perception/", {}),  # a participant arriving from a recruitment link
            ("/s/refusal-perception/item/1/", {"sessionid": "p" * 32}),  # one mid-study
            ("/studies/", {"sessionid": "r" * 32}),  # a signed-in researcher
        ]
        for path, cookies in pages:
            response = httpx.get(server.url + path, cookies=cookies, timeout=60)
            assert response.status_code == 503, (path, response.text[:300])
            assert response.headers["Retry-After"] == "60"
            assert FRIENDLY in response.text and "try again in a minute" in response.text
        api = httpx.get(f"{server.url}/api/studies/", headers={"Authorization": "Token x"})
        assert api.status_code == 503 and "detail" in api.json()


def _settings_value(expression: str, **env: str) -> str:
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout.strip()


def test_database_connect_timeout_is_short_and_configurable():
    options = "settings.DATABASES['default'].get('OPTIONS', {}).get('connect_timeout')"
    base = {"SECRET_KEY": "x", "DATABASE_URL": "postgres://u@db.example/x"}
    assert _settings_value(options, **base) == "3"
    assert _settings_value(options, **base, DB_CONNECT_TIMEOUT="7") == "7"
    # SQLite (make demo's fallback) takes no such option.
    assert _settings_value(options, SECRET_KEY="x", DATABASE_URL="sqlite:///x.db") == "None"
