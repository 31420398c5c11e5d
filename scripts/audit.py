"""pip-audit on the exact pins of pyproject.toml: known vulnerabilities fail, no advisories warn.

Usage: .venv/bin/python scripts/audit.py      (make audit; scripts/test.sh runs it before pytest)
Exit status: 0 clean, or the advisory service could not be asked (a warning says which pins went
unaudited); 1 a pinned version has a known vulnerability (each is listed with its fixed versions).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = Path(sys.executable).with_name("pip-audit")
# pip-audit stops at the first request that fails; this bounds a network that hangs instead.
OVERALL_TIMEOUT_S = int(os.environ.get("AUDIT_TIMEOUT", "300"))
# The project's own extras (refusallab[gpu]) are pins listed elsewhere in the file.
_SELF = re.compile(r"^refusallab\b", re.IGNORECASE)


def pinned_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """Every requirement of the project and its optional groups, each pinned with ==."""
    project = tomllib.loads(pyproject.read_text())["project"]
    groups = [project.get("dependencies", [])]
    groups += list(project.get("optional-dependencies", {}).values())
    requirements = [r for group in groups for r in group if not _SELF.match(r)]
    loose = [r for r in requirements if "==" not in r]
    if loose:
        raise SystemExit(f"audit: not pinned with == in pyproject.toml: {', '.join(loose)}")
    return list(dict.fromkeys(requirements))


def verdict(report: dict) -> tuple[int, list[str]]:
    """Exit status and the lines to print, from pip-audit's JSON report."""
    vulnerable, unaudited, audited = [], [], 0
    for dependency in report.get("dependencies", []):
        name, version = dependency.get("name"), dependency.get("version")
        if "skip_reason" in dependency:
            unaudited.append(f"{name} {version or ''}".strip())
            continue
        audited += 1
        for vuln in dependency.get("vulns", []):
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            vulnerable.append(
                f"  {name}=={version}: {vuln.get('id')}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in {fixed}"
            )
    lines = []
    if vulnerable:
        lines.append("audit: FAILED, known vulnerabilities in pinned requirements:")
        lines += vulnerable
        lines.append("Upgrade these pins in pyproject.toml to a fixed version.")
    if unaudited:
        lines.append(
            f"audit: WARNING, the advisory service answered 'not found' for {len(unaudited)} of "
            f"{len(unaudited) + audited} pins, so they were NOT audited: {', '.join(unaudited)}"
        )
    if not vulnerable and audited:
        lines.append(f"audit: no known vulnerabilities in the {audited} pins that were audited")
    return (1 if vulnerable else 0), lines


def audit(requirements: list[str]) -> tuple[int, list[str]]:
    with tempfile.TemporaryDirectory() as tmp:
        pins = Path(tmp) / "requirements.txt"
        pins.write_text("\n".join(requirements) + "\n")
        output = Path(tmp) / "report.json"
        command = [
            str(PIP_AUDIT),
            *("-r", str(pins)),
            "--no-deps",
            "--disable-pip",
            *("--progress-spinner", "off"),
            *("--format", "json"),
            *("--output", str(output)),
            *("--timeout", "20"),
            # A cache of its own: an answer cached earlier must not pass for a reachable service.
            *("--cache-dir", str(Path(tmp) / "cache")),
        ]
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=OVERALL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return 0, [unreachable(f"no answer within {OVERALL_TIMEOUT_S} s", requirements)]
        if not output.exists():
            # pip-audit writes its report only when every query was answered.
            last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
            return 0, [unreachable(last, requirements)]
        return verdict(json.loads(output.read_text()))


def unreachable(reason: str, requirements: list[str]) -> str:
    return (
        "audit: WARNING, the vulnerability advisory service could not be reached "
        f"({reason[:300]}); the {len(requirements)} pinned requirements were NOT audited. "
        "Run `make audit` where the network reaches pypi.org."
    )


def main() -> int:
    if not PIP_AUDIT.exists():
        print(f"audit: {PIP_AUDIT} is missing: install the test extras (pip install -e '.[test]')")
        return 1
    status, lines = audit(pinned_requirements())
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    sys.exit(main())
