"""The material benchmark runs as documented against the test database (small sizes; its
timings are not checked, only that every candidate went through the loop)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workers import worker_database_url

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("pipeline", ["pseudo-harmful", "query-scenarios"])
def test_the_bench_runs_each_generator_to_the_coders(pipeline):
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "material_throughput.py"), pipeline]
        + ["--rounds", "2", "--per-round", "3", "--samples", "1"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": worker_database_url(), "SECRET_KEY": "bench-test"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["pipeline"] == pipeline
    assert result["candidates"] == 6 and result["duplicates"] == 0
    if pipeline == "pseudo-harmful":
        assert result["probes_labelled"] == 6 * 2  # two targets, one sample each
        assert result["calls"] == 2 + 12
    else:
        assert result["judge_accepted"] == 6 and result["calls"] == 2 + 12
