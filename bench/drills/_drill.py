"""What the fault drills share: private Redis and PostgreSQL servers, the load setup, verdicts."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import participant_load as pl  # noqa: E402

ROOT = pl.ROOT


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


def verdict(title: str, checks: list[Check], facts: dict | None = None) -> int:
    """Print every check and one verdict line; the exit status (0 pass, 1 fail)."""
    print(f"\n== {title}")
    for key, value in (facts or {}).items():
        print(f"  {key}: {value}")
    for check in checks:
        detail = f": {check.detail}" if check.detail else ""
        print(f"  [{'PASS' if check.ok else 'FAIL'}] {check.name}{detail}")
    passed = all(c.ok for c in checks)
    score = f"{sum(c.ok for c in checks)}/{len(checks)} checks"
    print(f"VERDICT: {'PASS' if passed else 'FAIL'} ({score})")
    return 0 if passed else 1


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str, poll: float = 0.1):
    """Wait on progress (a predicate), bounded by a generous timeout; False if it never came."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(poll)
    print(f"  (gave up waiting for {what} after {timeout:.0f} s)", flush=True)
    return False


def load_checks(plan: pl.LoadPlan, result: pl.LoadResult, check: pl.Verification) -> list[Check]:
    """What every drill demands of the participants' side."""
    return [
        Check(
            "every participant finished (they resume by themselves)",
            len(result.completed) == plan.n,
            f"{len(result.completed)}/{plan.n} reached the completion page, "
            f"{result.recoveries} reopened their link",
        ),
        Check(
            "every acknowledged answer stored exactly once, with the value sent",
            check.acknowledged > 0 and not (check.lost or check.changed or check.duplicated),
            f"{check.acknowledged} acknowledged: {check.lost} lost, {check.changed} changed, "
            f"{check.duplicated} duplicated",
        ),
        Check(
            "every completed participant has exactly the planned ratings",
            check.wrong_count == 0 and check.client_done_not_completed == 0,
            f"{check.completed_in_db} completed in the database, {check.wrong_count} with a wrong "
            f"count, {check.client_done_not_completed} saw completion but are not completed",
        ),
    ]


def error_facts(result: pl.LoadResult) -> str:
    counts = result.error_counts()
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"


# --------------------------------------------------------------------------- private servers


class PrivateRedis:
    """A redis-server of the drill's own on 127.0.0.1:port, no persistence; never 6379."""

    def __init__(self, port: int, workdir: Path) -> None:
        if port == 6379:
            raise ValueError("the drills never touch the shared Redis on 6379")
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 30) -> None:
        log = (self.workdir / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
            )
            if ping.stdout.strip() == "PONG":
                return
            time.sleep(0.1)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


class PrivatePostgres:
    """A PostgreSQL cluster of the drill's own: initdb into a temporary directory, run as the
    postgres user (the drills run as root), on 127.0.0.1:port only."""

    def __init__(self, port: int) -> None:
        if port == 5432:
            raise ValueError("the drills never touch the shared PostgreSQL on 5432")
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[4]))
        if not bins:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = Path(bins[-1])
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix=f"drill-pg-{port}-"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres", "postgres")

    @property
    def server_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.dir,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{done.stdout}\n{done.stderr}")

    def init(self) -> None:
        self._as_postgres(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-instructions",
            "-E",
            "UTF8",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        )
        self._as_postgres(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.dir / "server.log"),
            "-w",
            "-t",
            "120",
            "-o",
            options,
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop"
        )

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def tool(self, name: str) -> str:
        return str(self.bin / name)


@contextlib.contextmanager
def private_postgres(port: int) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(port)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()


@contextlib.contextmanager
def app_under_load(
    *,
    pg_server: str,
    dbname: str,
    broker_url: str,
    port: int,
    workers: int,
    n: int,
    design: str = "bench",
    log_dir: Path,
    extra_env: dict | None = None,
) -> Iterator[tuple[dict, str, pl.StudyPlan, pl.Gunicorn]]:
    """A fresh database with a launched study of n slots, and gunicorn serving it."""
    with pl.fresh_database(pg_server, dbname) as db:
        env = pl.app_env(db, broker_url, **(extra_env or {}))
        pl.prepare_app(env)
        study = pl.prepare_study(env, design, "drill", n)
        server = pl.Gunicorn(env, port, workers, log_dir)
        try:
            server.start()
            yield env, db, study, server
        finally:
            server.stop()


def load_plan(args, server, study, **options) -> pl.LoadPlan:
    """Every participant of the drill's study through its pages, as the drill's flags say."""
    return pl.LoadPlan(
        base_url=server.base_url,
        slug=study.slug,
        n=args.n,
        positions=study.positions,
        concurrency=args.concurrency,
        max_seconds=args.max_seconds,
        **options,
    )


def add_common_arguments(parser, *, n: int, concurrency: int, workers: int, port: int) -> None:
    parser.add_argument("--n", type=int, default=n, help="participants")
    parser.add_argument("--concurrency", type=int, default=concurrency)
    parser.add_argument("--workers", type=int, default=workers, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=port, help="gunicorn's port")
    parser.add_argument("--max-seconds", type=float, default=600, help="bound of the load run")


def log_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


def pid_tag() -> str:
    return str(os.getpid())
