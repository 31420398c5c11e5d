"""The README's curl session, run with curl against a live server: token, create, fill,
launch, dashboard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from django.contrib.auth import get_user_model

from studies.models import Study, StudyMembership
from tests.api.readme import README, section, shell_blocks

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


def test_the_readme_curl_session_creates_fills_and_launches_a_study(live_server):
    get_user_model().objects.create_user("ada", password="pw-ada-session-1")
    blocks = [b for b in shell_blocks(section("REST API")) if "curl" in b]
    assert len(blocks) == 1, "the REST API section should have one curl session"
    script = blocks[0].replace("http://127.0.0.1:8000", live_server.url)
    assert script != blocks[0], "the session should start from the default address"
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        cwd=README.parent,
        env={**os.environ, "RL_USER": "ada", "RL_PASSWORD": "pw-ada-session-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    study = Study.objects.get(slug="every-type")
    assert study.status == "live"
    assert StudyMembership.objects.get(study=study).user.username == "ada"
    assert study.queries.count() == 16
    assert study.slots.count() == study.target_participants == 100
    # The session's last answer is the dashboard: a live study with its free slots.
    dashboard = json.loads(_last_json(result.stdout))
    assert dashboard["status"] == "live"
    assert dashboard["slots"]["free"] == 100


def _last_json(output: str) -> str:
    """curl prints the answers one after the other; the dashboard's starts with '{"study":'."""
    start = output.rfind('{"study":')
    assert start >= 0, output[-500:]
    return output[start:]
