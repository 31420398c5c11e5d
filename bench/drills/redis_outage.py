"""Drill: stop Redis under load; participants are unaffected, queued work runs once it is back.

    .venv/bin/python bench/drills/redis_outage.py                 # 40 participants, 5 s down
    .venv/bin/python bench/drills/redis_outage.py --n 20 --down 10

The app gets a redis-server of the drill's own (--redis-port, never the shared 6379) as its
Celery broker and cache, a Celery worker on it, and a fresh database on --pg-server. At 25% of
the answers Redis is stopped; while it is down a researcher asks for an analysis recompute
through the API (POST /api/studies/<slug>/analysis/); Redis comes back after --down seconds
(and after at least 60% of the answers). Verdict: the participants saw no error at all and
every acknowledged answer is stored exactly once; the recompute request was answered; and the
recompute asked for during the outage ran (done or failed, not left queued) once Redis was back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import _drill
import psycopg
from _drill import Check, pl

TOKEN_SCRIPT = (
    "from django.contrib.auth import get_user_model; "
    "from rest_framework.authtoken.models import Token; "
    f"print(Token.objects.get_or_create(user=get_user_model().objects.get(username={pl.BENCH_USER!r}))[0].key)"
)


def post_json(url: str, token: str, body: dict, timeout: float = 60) -> tuple[int, dict, float]:
    """A researcher's API call; (status, body, seconds). Only to 127.0.0.1."""
    assert url.startswith(f"http://{pl.HOST}:")
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    except OSError as exc:
        return 0, {"error": repr(exc)}, time.perf_counter() - started
    try:
        payload = json.loads(text or b"{}")
    except ValueError:
        payload = {"body": text[:200].decode(errors="replace")}
    return status, payload, time.perf_counter() - started


def analysis_statuses(db: str, slug: str) -> list[tuple[int, str, bool, str]]:
    """(id, status, taken by a worker, error) of the study's analysis results."""
    with psycopg.connect(db) as conn:
        return conn.execute(
            "SELECT r.id, r.status, r.started_at IS NOT NULL, left(r.error, 120) "
            "FROM studies_analysisresult r "
            "JOIN studies_study s ON s.id = r.study_id WHERE s.slug = %s ORDER BY r.id",
            [slug],
        ).fetchall()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _drill.add_common_arguments(parser, n=40, concurrency=6, workers=3, port=8431)
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--down", type=float, default=5.0, help="seconds Redis stays down")
    parser.add_argument("--pg-server", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--wait-work", type=float, default=300, help="bound on the queued work")
    args = parser.parse_args(argv)
    logs = _drill.log_dir("drill-redis-")
    redis = _drill.PrivateRedis(args.redis_port, logs)
    redis.start()
    outage: dict = {}
    worker = None
    try:
        with _drill.app_under_load(
            pg_server=args.pg_server,
            dbname=f"refusallab_drill_redis_{os.getpid()}",
            broker_url=redis.url,
            port=args.port,
            workers=args.workers,
            n=args.n,
            log_dir=logs,
            extra_env={"CACHE_URL": f"redis://127.0.0.1:{args.redis_port}/1"},
        ) as (env, db, study, server):
            token = pl.manage(env, "shell", "-c", TOKEN_SCRIPT).splitlines()[-1]
            worker_log = (logs / "celery-worker.log").open("ab")
            worker = subprocess.Popen(
                [pl.venv_bin("celery"), "-A", "config", "worker", "-Q", "default", "-c", "1",
                 "--without-gossip", "--without-mingle", "-l", "INFO"],
                cwd=pl.ROOT, env=env, stdout=worker_log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            plan = _drill.load_plan(args, server, study)
            total_answers = args.n * study.positions
            started = time.monotonic()
            analysis_url = f"{server.base_url}/api/studies/{study.slug}/analysis/"

            async def fault(progress: pl.Progress) -> None:
                if not await _drill.wait_for(
                    lambda: progress.acknowledged >= 0.25 * total_answers,
                    args.max_seconds,
                    "25% of the answers",
                ):
                    return
                redis.stop()
                outage["stop"] = time.monotonic() - started
                outage["errors_before"] = len(progress.result.errors)
                print(f"  Redis stopped at {progress.acknowledged} answers", flush=True)
                outage["post"] = await asyncio.to_thread(
                    post_json, analysis_url, token, {"inclusion": "completed"}
                )
                print(f"  recompute asked for while down: {outage['post'][0]}", flush=True)
                await asyncio.sleep(
                    max(0.0, args.down - (time.monotonic() - started - outage["stop"]))
                )
                await _drill.wait_for(
                    lambda: progress.acknowledged >= 0.6 * total_answers
                    or progress.completed + progress.failed >= args.n,
                    args.max_seconds,
                    "60% of the answers",
                )
                outage["errors_during"] = len(progress.result.errors) - outage["errors_before"]
                await asyncio.to_thread(redis.start)
                outage["start"] = time.monotonic() - started
                print(f"  Redis started again after {outage['start'] - outage['stop']:.1f} s")

            result = asyncio.run(pl.run_load(plan, during=fault))
            check = pl.verify(db, study, result)
            during_outage = analysis_statuses(db, study.slug)
            # Redis is back: the same request again, and a worker must take and finish it
            # (wait on its row, bounded, to leave "queued"/"running").
            outage["post_after"] = post_json(analysis_url, token, {"inclusion": "completed"})
            deadline = time.monotonic() + args.wait_work
            statuses = analysis_statuses(db, study.slug)
            while time.monotonic() < deadline and (
                not statuses or any(s[1] in ("queued", "running") for s in statuses)
            ):
                time.sleep(1)
                statuses = analysis_statuses(db, study.slug)
            ran_after = time.monotonic() - started
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        redis.stop()
    post_status = outage.get("post", (None, {}, 0.0))
    after_status = outage.get("post_after", (None, {}, 0.0))
    checks = [
        Check(
            "Redis was stopped and started mid-load",
            "start" in outage,
            f"down from {outage.get('stop', 0):.1f} s to {outage.get('start', 0):.1f} s",
        ),
        Check(
            "the participant path saw no error (none during the outage, none at all)",
            not result.errors,
            f"{outage.get('errors_during', '–')} during the outage; all: "
            + _drill.error_facts(result),
        ),
        *_drill.load_checks(plan, result, check),
        Check(
            "a recompute asked for while Redis was down got a clear answer (202 or 503), "
            "and left nothing queued",
            post_status[0] in (202, 503)
            and all(s[1] not in ("queued", "running") or s[2] for s in during_outage),
            f"HTTP {post_status[0]} after {post_status[2]:.1f} s: "
            f"{str(post_status[1])[:160]}; rows then: {during_outage}",
        ),
        Check(
            "a recompute asked for once Redis was back was queued and run by the worker",
            after_status[0] == 202
            and bool(statuses)
            and statuses[-1][2]
            and statuses[-1][1] not in ("queued", "running"),
            f"HTTP {after_status[0]}; rows at {ran_after:.0f} s: {statuses}",
        ),
    ]
    return _drill.verdict(
        "Redis stopped under load",
        checks,
        {
            "load": f"{args.n} participants, {args.concurrency} clients, {args.workers} workers, "
            f"{result.wall_s:.1f} s",
            "logs": str(logs),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
