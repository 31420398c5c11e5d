"""Drill: kill -9 a gunicorn worker under load; every acknowledged answer is stored exactly once.

    .venv/bin/python bench/drills/kill_worker.py                  # 60 participants, 2 kills
    .venv/bin/python bench/drills/kill_worker.py --n 20 --kills 1 --workers 2

A fresh database on --pg-server, the benchmark study (8 items x 3 questions), gunicorn with
--workers workers, and --n participants through --concurrency clients that, like a browser
whose request failed, send a failed submit once more unchanged and otherwise reopen their link.
At 30% (and, with --kills 2, 60%) of the answers a busy worker gets SIGKILL; gunicorn starts a
new one. Verdict: every participant finished, every acknowledged answer (a submit that got its
redirect) is stored exactly once with the value sent, every completed participant has exactly
the planned ratings, and the killed workers were replaced.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import _drill
from _drill import Check, pl


def client_sockets(port: int) -> set[str]:
    """Inodes of the established TCP connections to gunicorn's port (requests being served)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and int(fields[1].split(":")[1], 16) == port:
            inodes.add(f"socket:[{fields[9]}]")
    return inodes


def holds_any(pid: int, inodes: set[str]) -> bool:
    try:
        return any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


async def busy_worker(server: pl.Gunicorn, within: float = 3.0) -> int:
    """A worker in the middle of a request (it holds a client's connection), else any."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        inodes = client_sockets(server.port)
        busy = [pid for pid in server.worker_pids() if holds_any(pid, inodes)]
        if busy:
            return busy[0]
        await asyncio.sleep(0.002)
    return server.worker_pids()[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _drill.add_common_arguments(parser, n=60, concurrency=8, workers=3, port=8411)
    parser.add_argument("--kills", type=int, default=2, choices=[1, 2, 3])
    parser.add_argument("--pg-server", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args(argv)
    logs = _drill.log_dir("drill-kill-")
    killed: list[tuple[int, float]] = []
    respawned: list[bool] = []
    with _drill.app_under_load(
        pg_server=args.pg_server, dbname=f"refusallab_drill_kill_{os.getpid()}",
        broker_url=args.broker_url, port=args.port, workers=args.workers, n=args.n, log_dir=logs,
    ) as (_env, db, study, server):  # fmt: skip
        plan = _drill.load_plan(args, server, study, max_recoveries=30)
        total_answers = args.n * study.positions
        started = time.monotonic()

        async def fault(progress: pl.Progress) -> None:
            for k in range(args.kills):
                share = 0.3 * (k + 1)
                if not await _drill.wait_for(
                    lambda s=share: progress.acknowledged >= s * total_answers,
                    args.max_seconds, f"{share:.0%} of the answers",
                ):  # fmt: skip
                    return
                victim = await busy_worker(server)
                os.kill(victim, signal.SIGKILL)
                killed.append((victim, time.monotonic() - started))
                print(f"  kill -9 worker {victim} at {progress.acknowledged} answers", flush=True)
                respawned.append(
                    await _drill.wait_for(
                        lambda v=victim: v not in server.worker_pids()
                        and len(server.worker_pids()) >= args.workers,
                        120,
                        "a replacement worker",
                    )
                )

        result = asyncio.run(pl.run_load(plan, during=fault))
        check = pl.verify(db, study, result)
    checks = [
        Check(
            "the workers were killed and replaced",
            len(killed) == args.kills and all(respawned),
            ", ".join(f"pid {pid} at {at:.1f} s" for pid, at in killed) or "no kill happened",
        ),
        *_drill.load_checks(plan, result, check),
    ]
    return _drill.verdict(
        "kill -9 of a gunicorn worker under load",
        checks,
        {
            "load": f"{args.n} participants, {args.concurrency} clients, {args.workers} workers, "
            f"{result.wall_s:.1f} s",
            "errors the participants saw (and recovered from)": _drill.error_facts(result),
            "gunicorn log": str(server.log_path),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
