"""Every page answers with a Content-Security-Policy: strict on participant pages, and on
researcher pages only the exceptions the settings document (nonces, Plotly's inline styles)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import get_resolver, reverse

from tests.access.test_permission_matrix import (  # noqa: F401 - world is a fixture
    ROUTES,
    _walk,
    researcher_routes,
    world,
)

pytestmark = pytest.mark.django_db

PARTICIPANT_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
# Route parameters the permission matrix's rules do not supply (public and account pages).
OTHER_KWARGS = {"password_reset_confirm": {"uidb64": "MQ", "token": "set-password"}}


def policy(response) -> dict[str, list[str]]:
    header = response.get("Content-Security-Policy")
    assert header, f"{response.status_code} without a Content-Security-Policy"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def without_nonce(values: list[str]) -> list[str]:
    return [v for v in values if not v.startswith("'nonce-")]


def test_every_researcher_route_sends_a_policy_with_no_eval_and_no_inline_script(world):  # noqa: F811
    client = Client()
    client.force_login(world.users["owner"])
    problems = []
    for name, route in researcher_routes():
        rule = ROUTES.get(name)
        kwargs = rule.kwargs(world) if rule else OTHER_KWARGS.get(name, {})
        response = client.get(reverse(name, kwargs=kwargs))
        if "Content-Security-Policy" not in response:
            problems.append(f"{route}: {response.status_code} without a policy")
            continue
        directives = policy(response)
        scripts = " ".join(directives.get("script-src", []))
        if "unsafe" in scripts or without_nonce(directives["script-src"]) != ["'self'"]:
            problems.append(f"{route}: script-src {scripts}")
        if any("unsafe-eval" in values for values in map(" ".join, directives.values())):
            problems.append(f"{route}: allows eval")
        if directives.get("object-src") != ["'none'"] or directives.get("base-uri") != ["'none'"]:
            problems.append(f"{route}: object-src/base-uri not 'none'")
        if directives.get("frame-ancestors") != ["'none'"]:
            problems.append(f"{route}: may be framed")
    assert not problems, "\n".join(problems)


def test_only_chart_pages_allow_inline_styles(world):  # noqa: F811
    client = Client()
    client.force_login(world.users["owner"])
    slug = world.study.slug
    for url in (f"/studies/{slug}/", f"/studies/{slug}/results/"):
        assert policy(client.get(url))["style-src"] == ["'self'", "'unsafe-inline'"], url
    for url in ("/", "/studies/", f"/studies/{slug}/review/", f"/studies/{slug}/design/"):
        assert without_nonce(policy(client.get(url))["style-src"]) == ["'self'"], url


def test_the_api_docs_run_their_inline_script_by_nonce():
    response = Client().get("/api/docs/")
    assert response.status_code == 200
    nonce = re.search(r"'nonce-([^']+)'", response["Content-Security-Policy"])[1]
    page = response.content.decode()
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", page)
    assert inline and all(f'nonce="{nonce}"' in tag for tag in inline), inline
    assert all(f'nonce="{nonce}"' in tag for tag in re.findall(r"<style[^>]*>", page))
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


def test_admin_pages_send_a_policy():
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-root-1"))
    for url in ("/admin/login/", "/admin/", "/admin/studies/study/"):
        directives = policy(client.get(url))
        assert "unsafe" not in " ".join(directives["script-src"]), url
        assert directives["frame-ancestors"] == ["'none'"], url


def participant_routes() -> list[tuple[str, str]]:
    return [(n, r) for n, r in _walk(get_resolver().url_patterns) if r.startswith("s/<")]


def _participant_url(route: str, slug: str) -> str:
    values = {"slug": slug, "key": "about-you", "position": "1"}
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values.get(m[1], "1"), route)


def test_every_participant_page_has_the_strict_policy(make_study):
    study = make_study()
    participant = Client()
    joined = participant.get(
        f"/s/{study.slug}/?PROLIFIC_PID=csp-1&STUDY_ID=st&SESSION_ID=se", follow=True
    )
    assert joined.status_code == 200
    routes = participant_routes()
    assert routes, "no participant routes found under /s/"
    for name, route in routes:
        for client in (participant, Client()):
            url = _participant_url(route, study.slug)
            response = client.get(url)
            assert policy(response) == PARTICIPANT_POLICY, f"{name} {url}"
    # A study that does not exist, and the participant's POSTs, are participant pages too.
    assert policy(Client().get("/s/no-such-study/")) == PARTICIPANT_POLICY
    consent = participant.post(f"/s/{study.slug}/consent/", {})
    assert policy(consent) == PARTICIPANT_POLICY


def test_the_lock_out_page_has_a_policy():
    get_user_model().objects.create_user("ada", password="a-long-Pass-phrase-42")
    client = Client()
    response = None
    for _ in range(10):
        response = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert response.status_code == 429
    assert without_nonce(policy(response)["script-src"]) == ["'self'"]
