"""Sign-in lock-out: repeated wrong passwords lock one account from one address, for a while
that grows with each further lock-out; the page, the API token and the admin login alike."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "a-long-Pass-phrase-42"
LIMIT = getattr(settings, "AXES_FAILURE_LIMIT", 5)


@pytest.fixture
def ada():
    return get_user_model().objects.create_user("ada", email="ada@example.org", password=PASSWORD)


def sign_in(client: Client, username: str, password: str = PASSWORD):
    return client.post("/accounts/login/", {"username": username, "password": password})


def signed_in(client: Client) -> bool:
    return client.get("/studies/").status_code == 200


def fail(client: Client, username: str = "ada", times: int = LIMIT):
    response = None
    for _ in range(times):
        response = sign_in(client, username, "not-the-password")
    return response


def minutes_to_wait(page: str) -> int:
    match = re.search(r"in (\d+) minutes?", page)
    assert match, page
    return int(match[1])


def let_time_pass(minutes: float) -> None:
    """Move every recorded attempt into the past, as if this many minutes had gone by."""
    from axes.models import AccessAttempt, AccessAttemptExpiration, AccessFailureLog, AccessLog

    delta = dt.timedelta(minutes=minutes)
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        for row in model.objects.all():
            model.objects.filter(pk=row.pk).update(attempt_time=row.attempt_time - delta)
    for row in AccessAttemptExpiration.objects.all():
        AccessAttemptExpiration.objects.filter(pk=row.pk).update(expires_at=row.expires_at - delta)


def test_the_right_password_is_refused_while_locked_and_the_page_says_until_when(ada):
    client = Client()
    fail(client, times=LIMIT - 1)
    assert fail(client, times=1).status_code == 429
    response = sign_in(client, "ada")
    page = response.content.decode()
    assert response.status_code == 429
    assert not signed_in(client)
    # The platform's own page (navigation, stylesheet), saying when to come back.
    assert "Too many failed sign-ins" in page and 'class="site-nav"' in page
    assert minutes_to_wait(page) == settings.AXES_COOLOFF_MINUTES
    assert re.search(r"after \d\d:\d\d UTC", page), page
    assert int(response["Retry-After"]) > 0


def test_fewer_failures_than_the_limit_do_not_lock(ada):
    client = Client()
    fail(client, times=LIMIT - 1)
    assert sign_in(client, "ada").status_code == 302
    assert signed_in(client)


def test_a_successful_sign_in_resets_the_count(ada):
    client = Client()
    fail(client, times=LIMIT - 1)
    assert sign_in(client, "ada").status_code == 302
    client = Client()
    fail(client, times=LIMIT - 1)
    assert sign_in(client, "ada").status_code == 302
    assert signed_in(client)


def test_username_and_email_count_as_one_account(ada):
    client = Client()
    fail(client, "ada", times=LIMIT - 2)
    fail(client, "ADA@example.org", times=2)
    assert sign_in(client, "ada@example.org").status_code == 429
    assert sign_in(client, "ada").status_code == 429
    assert not signed_in(client)


def test_the_lock_holds_one_account_from_one_address_only(ada):
    get_user_model().objects.create_user("grace", password=PASSWORD)
    fail(Client(REMOTE_ADDR="10.0.0.7"))
    # A colleague behind the same office address still signs in ...
    colleague = Client(REMOTE_ADDR="10.0.0.7")
    assert sign_in(colleague, "grace").status_code == 302
    # ... and so does Ada from home.
    home = Client(REMOTE_ADDR="192.0.2.10")
    assert sign_in(home, "ada").status_code == 302
    assert sign_in(Client(REMOTE_ADDR="10.0.0.7"), "ada").status_code == 429


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(ada, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.9.9.9"
    fail(Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1"))
    elsewhere = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.2")
    assert sign_in(elsewhere, "ada").status_code == 302
    again = Client(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert sign_in(again, "ada").status_code == 429


def test_each_further_lock_out_lasts_longer_and_then_ends(ada):
    client = Client()
    base = settings.AXES_COOLOFF_MINUTES
    first = fail(client)
    assert minutes_to_wait(first.content.decode()) == base
    let_time_pass(base + 1)
    second = fail(client)
    assert second.status_code == 429
    assert minutes_to_wait(second.content.decode()) == 2 * base
    let_time_pass(base + 1)
    assert sign_in(client, "ada").status_code == 429, "the second lock-out lasts longer"
    let_time_pass(base)
    assert sign_in(client, "ada").status_code == 302
    assert signed_in(client)


def test_failures_while_locked_do_not_extend_the_lock(ada):
    client = Client()
    base = settings.AXES_COOLOFF_MINUTES
    fail(client)
    let_time_pass(base - 2)
    fail(client, times=3)
    let_time_pass(3)
    assert sign_in(client, "ada").status_code == 302


def test_api_token_locks_out_too_with_a_json_refusal(ada):
    client = Client()
    for _ in range(LIMIT - 1):
        refused = client.post("/api/token/", {"username": "ada", "password": "wrong"})
        assert refused.status_code == 400
    client.post("/api/token/", {"username": "ada", "password": "wrong"})
    response = client.post(
        "/api/token/",
        {"username": "ada", "password": PASSWORD},
        content_type="application/json",
    )
    assert response.status_code == 429
    assert "token" not in response.json()
    assert "Too many failed sign-ins" in response.json()["detail"]
    assert int(response["Retry-After"]) > 0
    # The lock is the account's: the login page refuses the right password as well.
    assert sign_in(Client(), "ada").status_code == 429


def test_api_token_still_works_below_the_limit(ada):
    client = Client()
    client.post("/api/token/", {"username": "ada", "password": "wrong"})
    response = client.post("/api/token/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 200 and response.json()["token"]


def test_admin_login_locks_out(ada):
    get_user_model().objects.create_superuser("root", password=PASSWORD)
    client = Client()
    for _ in range(LIMIT):
        client.post("/admin/login/", {"username": "root", "password": "wrong"})
    response = client.post("/admin/login/", {"username": "root", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert client.get("/admin/").status_code == 302


def test_lock_out_settings_come_from_the_environment():
    env = {
        **os.environ,
        "AXES_FAILURE_LIMIT": "3",
        "AXES_COOLOFF_MINUTES": "7",
        "AXES_COOLOFF_MAX_HOURS": "2",
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings as s; "
            "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_MINUTES, s.AXES_COOLOFF_MAX_HOURS)",
        ],
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["3", "7", "2"]
