"""Wall time of the seed design's power curve from the shell (python -m studies.analysis.power).

Runs the command --repeat times in fresh processes and reports each run's wall time, CPU time
and peak memory with the machine's load average, then the best run (the machine may be shared:
the best run is the one least slowed by others).

    python bench/power_speed.py [--repeat 3] [--simulations 500] [--participants 96,192,...,960]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(participants: str, simulations: int, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "studies.analysis.power",
        "--spec",
        "examples/refusal-perception/study.yaml",
        "--assumptions",
        "examples/refusal-perception/power.yaml",
        "--participants",
        participants,
        "--simulations",
        str(simulations),
        "--seed",
        "1",
        "--csv",
        str(out),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--simulations", type=int, default=500)
    parser.add_argument("--participants", default="96,192,...,960")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "power.csv"
        for i in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            subprocess.run(
                command(args.participants, args.simulations, out),
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wall = time.perf_counter() - started
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            load = os.getloadavg()[0]
            runs.append((wall, cpu, after.ru_maxrss / 1024, load))
            print(
                f"run {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, peak RSS "
                f"{after.ru_maxrss / 1024:.0f} MiB, load average {load:.1f} on "
                f"{os.cpu_count()} cores",
                flush=True,
            )
        rows = out.read_text(encoding="utf-8").count("\n") - 1
    best = min(runs)
    print(
        f"best of {args.repeat}: {best[0]:.1f} s wall ({best[1]:.1f} s CPU); "
        f"{rows} table rows written"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
