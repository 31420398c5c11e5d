"""Drill: restart PostgreSQL under load; the 503 page in the gap, recovery by itself, nothing lost.

    .venv/bin/python bench/drills/postgres_restart.py             # 40 participants, 3 s down
    .venv/bin/python bench/drills/postgres_restart.py --n 20 --down 5

The drill starts a PostgreSQL cluster of its own (initdb into a temporary directory, port
--pg-port, run as the postgres user; removed at the end), points the app at it, and runs --n
participants who, like people, reopen their link after a failed page. At 30% of the answers
the cluster is stopped (fast shutdown), left down --down seconds and started again; gunicorn
is not touched. Verdict: during the gap participants got 503s (the friendly page), not 500s;
every participant finished afterwards without any restart of the app; every acknowledged
answer is stored exactly once; every completed participant has exactly the planned ratings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import _drill
from _drill import Check, pl


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _drill.add_common_arguments(parser, n=40, concurrency=6, workers=3, port=8421)
    parser.add_argument("--pg-port", type=int, default=5441)
    parser.add_argument("--down", type=float, default=3.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args(argv)
    logs = _drill.log_dir("drill-pg-")
    gap: dict[str, float] = {}
    with (
        _drill.private_postgres(args.pg_port) as cluster,
        _drill.app_under_load(
            pg_server=cluster.server_url, dbname="refusallab_drill", broker_url=args.broker_url,
            port=args.port, workers=args.workers, n=args.n, log_dir=logs,
        ) as (_env, db, study, server),
    ):  # fmt: skip
        plan = _drill.load_plan(args, server, study, max_recoveries=60)
        total_answers = args.n * study.positions
        started = time.monotonic()
        errors_at: dict[str, int] = {}

        async def fault(progress: pl.Progress) -> None:
            if not await _drill.wait_for(
                lambda: progress.acknowledged >= 0.3 * total_answers, args.max_seconds,
                "30% of the answers",
            ):  # fmt: skip
                return
            errors_at["before"] = len(progress.result.errors)
            gap["stop"] = time.monotonic() - started
            await asyncio.to_thread(cluster.stop, "fast")
            print(f"  PostgreSQL stopped at {progress.acknowledged} answers", flush=True)
            await asyncio.sleep(args.down)
            await asyncio.to_thread(cluster.start)
            gap["start"] = time.monotonic() - started
            print(
                f"  PostgreSQL started again after {gap['start'] - gap['stop']:.1f} s", flush=True
            )

        result = asyncio.run(pl.run_load(plan, during=fault))
        check = pl.verify(db, study, result)
    counts = result.error_counts()
    n503, n500 = counts.get("http 503", 0), counts.get("http 500", 0)
    checks = [
        Check(
            "PostgreSQL was stopped and started mid-load",
            "start" in gap,
            f"down from {gap.get('stop', 0):.1f} s to {gap.get('start', 0):.1f} s",
        ),  # fmt: skip
        Check(
            "participants in the gap got the 503 page, never a 500",
            n500 == 0,
            f"{n503} x 503, {n500} x 500, other: "
            + (
                ", ".join(
                    f"{k}: {v}" for k, v in counts.items() if k not in {"http 503", "http 500"}
                )
                or "none"
            ),
        ),  # fmt: skip
        *_drill.load_checks(plan, result, check),
    ]
    return _drill.verdict(
        "PostgreSQL restarted under load",
        checks,
        {
            "load": f"{args.n} participants, {args.concurrency} clients, {args.workers} workers, "
            f"{result.wall_s:.1f} s",
            "errors before the stop": errors_at.get("before", "–"),
            "gunicorn log": str(server.log_path),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
