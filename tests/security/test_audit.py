"""scripts/audit.py: pip-audit on the exact pins; vulnerabilities fail, no advisory warns."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "audit.py"

_spec = importlib.util.spec_from_file_location("audit_script", SCRIPT)
audit_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(audit_script)


def test_every_requirement_of_the_project_is_audited_as_pinned():
    pins = audit_script.pinned_requirements()
    assert "Django==5.2.19" in pins and "django-axes==8.3.1" in pins
    assert "pip-audit==2.10.1" in pins and "torch==2.13.0" in pins  # test and gpu extras too
    assert all("==" in pin for pin in pins)
    assert not any(pin.startswith("refusallab") for pin in pins)


def test_a_vulnerable_pin_fails_the_audit_and_says_which_version_fixes_it():
    report = {
        "dependencies": [
            {"name": "nh3", "version": "0.3.1", "vulns": []},
            {
                "name": "django",
                "version": "5.2.1",
                "vulns": [
                    {"id": "PYSEC-2025-1", "fix_versions": ["5.2.2"], "aliases": ["CVE-2025-1"]}
                ],
            },
        ]
    }
    status, lines = audit_script.verdict(report)
    text = "\n".join(lines)
    assert status == 1
    assert "django==5.2.1: PYSEC-2025-1 (CVE-2025-1); fixed in 5.2.2" in text
    assert "nh3" not in text


def test_pins_the_service_does_not_know_are_a_warning_not_a_silent_pass():
    report = {
        "dependencies": [
            {"name": "nh3", "version": "0.3.1", "vulns": []},
            {"name": "django", "skip_reason": "Dependency not found on PyPI"},
        ]
    }
    status, lines = audit_script.verdict(report)
    assert status == 0
    assert "WARNING" in lines[0] and "1 of 2 pins" in lines[0] and "django" in lines[0]
    assert "no known vulnerabilities in the 1 pins" in lines[1]


def test_an_unreachable_advisory_service_warns_and_lets_the_run_continue():
    dead_proxy = "http://127.0.0.1:9"
    env = {**os.environ, "HTTPS_PROXY": dead_proxy, "https_proxy": dead_proxy}
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    run = subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "could not be reached" in run.stdout and "NOT audited" in run.stdout
