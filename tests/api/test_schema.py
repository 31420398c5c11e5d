"""The API's description: a complete OpenAPI schema, docs served without a CDN, and every
operation answering as the schema says (schemathesis)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db


def test_schema_is_complete_without_warnings(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "spectacular",
            "--validate",
            "--fail-on-warn",
            "--file",
            str(tmp_path / "schema.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    schema = (tmp_path / "schema.yaml").read_text()
    for path in (
        "/api/token/",
        "/api/studies/{slug}/stimuli/",
        "/api/studies/{slug}/variants/approve/",
        "/api/studies/{slug}/launch/",
        "/api/studies/{slug}/members/{username}/",
        "/api/studies/{slug}/dashboard/",
        "/api/studies/{slug}/analysis/",
        "/api/models/{name}/",
    ):
        assert f"  {path}:" in schema, path


def test_docs_are_served_by_the_platform_itself():
    html = Client().get("/api/docs/").content.decode()
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    styles = re.findall(r'<link[^>]+href="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts + styles), scripts
    for src in scripts:
        assert Client().get(src).status_code == 200, src


@pytest.fixture
def api_schema():
    # The WSGI handler closes "old" connections after each request, as a server must; inside
    # a test's transaction that would close the test's own connection (Django's test client
    # disconnects the same signal handlers).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    api = schemathesis.openapi.from_wsgi("/api/schema/", application)
    # Valid requests only (bad input is tested per area), a bounded, repeatable number of them.
    api.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE])
    api.config.phases.coverage.enabled = False
    yield api
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=5,
    derandomize=True,  # the same examples on every run
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, people, draft):
    """A researcher who owns a study calls every operation: no 5xx, documented answers."""
    token, _ = Token.objects.get_or_create(user=people.owner)
    if case.path_parameters and "slug" in case.path_parameters:
        # Mostly the owner's real study, so the operations get past "not found".
        case.path_parameters = {**case.path_parameters, "slug": draft.slug}
    case.call_and_validate(
        headers={"Authorization": f"Token {token.key}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
