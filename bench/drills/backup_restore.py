"""Drill: pg_dump under load, pg_restore into a fresh database, row counts as at the dump moment.

    .venv/bin/python bench/drills/backup_restore.py               # 40 participants

A PostgreSQL cluster of the drill's own (initdb into a temporary directory, port --pg-port, run
as the postgres user; removed at the end) holds the app's database while --n participants
rate. At 40% of the answers two custom-format dumps are taken while the load goes on:
  1. the backup of docs/operations.md ("Backups"): `pg_dump --format=custom --compress=6
     --file=FILE DATABASE_URL`, then `pg_restore --list FILE`, bracketed by row counts just
     before and just after it;
  2. the same command with --snapshot: the counts are read in the very snapshot pg_dump copies,
     so they must match the restore exactly.
Each is restored as the "Restore" steps say (`pg_restore --no-owner --no-privileges
--exit-on-error --jobs=4 --dbname=NEW`) into a fresh database. Verdict:
dump 2's restore has exactly the participants and ratings counted in its snapshot; dump 1's
lies between its before/after counts and holds every answer acknowledged before it started;
neither restore holds a half-stored answer (a trial with only some of its ratings); and the
load itself lost nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time

import _drill
import psycopg
from _drill import Check, pl

COUNTS = {
    "participants": "SELECT count(*) FROM annotation_participant",
    "ratings": "SELECT count(*) FROM annotation_rating",
}
# Trials whose ratings are not all there: an answer is stored whole or not at all.
HALF_STORED = """
SELECT count(*) FROM (
    SELECT t.id FROM annotation_trial t
    JOIN annotation_rating r ON r.trial_id = t.id
    GROUP BY t.id
    HAVING count(*) NOT IN (%s, 1)
) AS partial
"""


def counts(conn) -> dict[str, int]:
    return {name: conn.execute(sql).fetchone()[0] for name, sql in COUNTS.items()}


def run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _drill.add_common_arguments(parser, n=40, concurrency=6, workers=3, port=8441)
    parser.add_argument("--pg-port", type=int, default=5441)
    parser.add_argument("--broker-url", default="redis://127.0.0.1:6379/6")
    args = parser.parse_args(argv)
    logs = _drill.log_dir("drill-backup-")
    dumps: dict = {}
    with (
        _drill.private_postgres(args.pg_port) as cluster,
        _drill.app_under_load(
            pg_server=cluster.server_url,
            dbname="refusallab_drill",
            broker_url=args.broker_url,
            port=args.port,
            workers=args.workers,
            n=args.n,
            log_dir=logs,
        ) as (_env, db, study, server),
    ):
        plan = _drill.load_plan(args, server, study)
        total_answers = args.n * study.positions
        pg_dump = cluster.tool("pg_dump")

        def documented_dump() -> None:
            path = logs / "documented.dump"
            acked = {
                e: dict(a) for e, a in plan_result["progress"].result.acknowledged.items()
            }  # answers acknowledged before the dump started
            with psycopg.connect(db) as conn:
                before = counts(conn)
            started = time.perf_counter()
            run([pg_dump, "--format=custom", "--compress=6", f"--file={path}", db])
            run([cluster.tool("pg_restore"), "--list", str(path)])  # complete and readable
            seconds = time.perf_counter() - started
            with psycopg.connect(db) as conn:
                after = counts(conn)
            dumps["documented"] = {
                "path": path, "before": before, "after": after, "acked": acked, "s": seconds
            }  # fmt: skip

        def snapshot_dump() -> None:
            path = logs / "snapshot.dump"
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                moment = counts(conn)  # read in the snapshot pg_dump will copy
                run([pg_dump, "--format=custom", "--compress=6", f"--snapshot={snapshot}",
                     f"--file={path}", db])  # fmt: skip
                conn.execute("COMMIT")
            dumps["snapshot"] = {"path": path, "moment": moment}

        plan_result: dict = {}

        async def backup(progress: pl.Progress) -> None:
            plan_result["progress"] = progress
            if not await _drill.wait_for(
                lambda: progress.acknowledged >= 0.4 * total_answers,
                args.max_seconds,
                "40% of the answers",
            ):
                return
            await asyncio.to_thread(documented_dump)
            print(f"  documented dump taken at {progress.acknowledged} answers", flush=True)
            await asyncio.to_thread(snapshot_dump)
            print(f"  snapshot dump taken at {progress.acknowledged} answers", flush=True)
            dumps["during_load"] = progress.completed < args.n

        result = asyncio.run(pl.run_load(plan, during=backup))
        check = pl.verify(db, study, result)
        restored: dict = {}
        for name, dump in dumps.items():
            if not isinstance(dump, dict):
                continue
            target = f"refusallab_restore_{name}"
            with psycopg.connect(cluster.server_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{target}"')
            url = pl.server_url(cluster.server_url, target)
            run([cluster.tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
                 "--jobs=4", f"--dbname={url}", str(dump["path"])])  # fmt: skip
            with psycopg.connect(url) as conn:
                restored[name] = {
                    "counts": counts(conn),
                    "half": conn.execute(
                        HALF_STORED % len(_questions(conn, study.slug))
                    ).fetchone()[0],
                }
                if name == "documented":
                    restored[name]["missing"] = _missing(conn, study, dump["acked"])
    doc, snap = dumps.get("documented"), dumps.get("snapshot")
    rdoc, rsnap = restored.get("documented", {}), restored.get("snapshot", {})
    checks = [
        Check(
            "both dumps were taken while participants were rating",
            bool(doc and snap and dumps.get("during_load")),
            f"documented dump {doc['s']:.1f} s" if doc else "no dump",
        ),
        Check(
            "the --snapshot restore has exactly the rows of the dump moment",
            bool(snap and rsnap) and rsnap["counts"] == snap["moment"],
            f"snapshot {snap and snap['moment']}, restored {rsnap.get('counts')}",
        ),
        Check(
            "the documented restore lies between the counts before and after its dump",
            bool(doc and rdoc)
            and all(doc["before"][k] <= rdoc["counts"][k] <= doc["after"][k] for k in COUNTS),
            f"before {doc and doc['before']}, restored {rdoc.get('counts')}, "
            f"after {doc and doc['after']}",
        ),
        Check(
            "the documented restore holds every answer acknowledged before the dump",
            bool(rdoc) and rdoc.get("missing") == 0,
            f"{rdoc.get('missing')} of "
            f"{sum(len(a) for a in doc['acked'].values()) if doc else 0} missing",
        ),
        Check(
            "no restore holds a half-stored answer",
            bool(rdoc and rsnap) and rdoc["half"] == 0 and rsnap["half"] == 0,
            f"{rdoc.get('half')} and {rsnap.get('half')} trials with some of their ratings",
        ),
        *_drill.load_checks(plan, result, check),
    ]
    return _drill.verdict(
        "backup (pg_dump) under load and restore",
        checks,
        {
            "load": f"{args.n} participants, {args.concurrency} clients, {args.workers} workers, "
            f"{result.wall_s:.1f} s",
            "errors": _drill.error_facts(result),
        },
    )


def _questions(conn, slug: str) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "SELECT q.key FROM studies_question q JOIN studies_study s ON s.id = q.study_id "
            "WHERE s.slug = %s AND q.block_id IS NULL AND q.correct_value IS NULL",
            [slug],
        ).fetchall()
    ]


def _missing(conn, study: pl.StudyPlan, acked: dict) -> int:
    """Acknowledged answers (participant, position, question) the restored database lacks."""
    salt = conn.execute(
        "SELECT pseudonym_salt FROM studies_study WHERE slug = %s", [study.slug]
    ).fetchone()[0]
    rows = conn.execute(
        "SELECT p.pseudonym, t.position, q.key FROM annotation_rating r "
        "JOIN annotation_trial t ON t.id = r.trial_id "
        "JOIN studies_question q ON q.id = r.question_id "
        "JOIN annotation_participant p ON p.id = r.participant_id"
    ).fetchall()
    present = {(p, pos, key) for p, pos, key in rows}
    return sum(
        (pl.pseudonym_for(salt=salt, external_id=e), pos, key) not in present
        for e, answers in acked.items()
        for pos, key in answers
    )


if __name__ == "__main__":
    sys.exit(main())
