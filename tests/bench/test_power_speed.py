"""The power benchmark script runs as documented (tiny sizes; no timing is checked)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_power_speed_script_reports_its_runs():
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "power_speed.py"),
            "--repeat",
            "1",
            "--simulations",
            "10",
            "--participants",
            "16,32",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "run 1:" in out.stdout and "best of 1:" in out.stdout
    assert "16 table rows written" in out.stdout  # 2 counts x 8 response-type terms
