"""Exports as jobs: request one (audited), build it on a worker with progress, serve and expire it.

An export is one zip: the chosen tables in one format under ``data/``, the codebook (JSON and
Markdown) and a SHA-256 manifest; a replication package adds the spec, the stimuli file, the
analysis (JSON and the self-contained HTML report) and a README (studies.datasets.package).
Files live under settings.EXPORT_ROOT until settings.EXPORT_EXPIRY_HOURS have passed.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import Http404
from django.utils import timezone

from config.dispatch import send_on_commit
from studies import access
from studies.access import Action
from studies.datasets import writers
from studies.datasets.codebook import codebook_json, codebook_markdown, export_codebook
from studies.datasets.tables import TABLE_NAMES, Table, build_tables
from studies.domain import DEFAULT_INCLUSION, INCLUSION_RULES
from studies.models import ExportJob, Study
from studies.services import record_audit

logger = logging.getLogger(__name__)

FORMATS = writers.FORMATS
OPEN = (ExportJob.Status.QUEUED, ExportJob.Status.RUNNING)
# Progress is written to the job's row at most this often (the page polls the row).
PROGRESS_EVERY_S = 0.5
MANIFEST = "MANIFEST.sha256"


class ExportRefused(ValueError):
    """Bad export options; the message says what to choose instead. Nothing was stored."""


@dataclass(frozen=True)
class ExportOptions:
    tables: tuple[str, ...] = TABLE_NAMES
    export_format: str = "csv"
    inclusion: str = DEFAULT_INCLUSION
    package: bool = False
    include_recruitment_ids: bool = False

    def checked(self) -> ExportOptions:
        tables = tuple(t for t in TABLE_NAMES if t in set(self.tables))
        unknown = sorted(set(self.tables) - set(TABLE_NAMES))
        if unknown:
            raise ExportRefused(
                f"unknown table {unknown[0]!r}: choose from {', '.join(TABLE_NAMES)}"
            )
        if self.package:
            tables = TABLE_NAMES  # a replication package has every table
        if not tables:
            raise ExportRefused("choose at least one table")
        if self.export_format not in FORMATS:
            raise ExportRefused(f"format must be one of {', '.join(FORMATS)}")
        if self.inclusion not in INCLUSION_RULES:
            raise ExportRefused(f"inclusion must be one of {', '.join(INCLUSION_RULES)}")
        return ExportOptions(
            tables, self.export_format, self.inclusion, self.package, self.include_recruitment_ids
        )


def may_include_recruitment_ids(user, study: Study) -> bool:
    """Only the study's owners and superusers (Action.MANAGE) may export raw recruitment ids."""
    return access.can(user, Action.MANAGE, study)


def may_download(user, job: ExportJob) -> bool:
    needed = Action.MANAGE if job.include_recruitment_ids else Action.VIEW
    return access.can(user, needed, job.study)


# --- requesting ----------------------------------------------------------------------------


@transaction.atomic
def request_export(
    *, study: Study, actor: AbstractBaseUser | None, options: ExportOptions
) -> ExportJob:
    """Queue an export job (audited). ExportRefused on bad options; PermissionDenied when
    recruitment ids are asked for by someone who is not an owner or a superuser."""
    options = options.checked()
    if options.include_recruitment_ids and not may_include_recruitment_ids(actor, study):
        raise PermissionDenied("Only the study's owners and superusers may export recruitment ids.")
    job = ExportJob.objects.create(
        study=study,
        requested_by=actor,
        tables=list(options.tables),
        format=options.export_format,
        inclusion=options.inclusion,
        include_recruitment_ids=options.include_recruitment_ids,
        package=options.package,
    )
    record_audit(
        study=study,
        actor=actor,
        action="export_requested",
        job=job.pk,
        tables=list(options.tables),
        format=options.export_format,
        inclusion=options.inclusion,
        package=options.package,
        recruitment_ids=options.include_recruitment_ids,
    )
    from studies.tasks import run_export_job

    send_on_commit(
        lambda: run_export_job.delay(job.pk),
        what="export",
        on_failure=lambda reason: ExportJob.objects.filter(pk=job.pk, status__in=OPEN).update(
            status=ExportJob.Status.FAILED, error=reason, finished_at=timezone.now()
        ),
    )
    return job


def record_download(*, job: ExportJob, actor: AbstractBaseUser | None) -> None:
    """Every download of an export is audited (recruitment ids included or not)."""
    record_audit(
        study=job.study,
        actor=actor,
        action="export_downloaded",
        job=job.pk,
        recruitment_ids=job.include_recruitment_ids,
    )


def record_streamed_export(
    *, study: Study, actor: AbstractBaseUser | None, table: str, inclusion: str
) -> None:
    """The results page's direct CSV downloads are exports too: audited like the jobs."""
    record_audit(
        study=study,
        actor=actor,
        action="export_streamed",
        tables=[table],
        format="csv",
        inclusion=inclusion,
        package=False,
        recruitment_ids=False,
    )


# --- building ------------------------------------------------------------------------------


@dataclass
class Built:
    """What build_export wrote into its folder."""

    files: list[str]
    rows: dict[str, int] = field(default_factory=dict)


@contextmanager
def postgres_reader() -> Iterator[Any]:
    """The psycopg connection the PostgreSQL path reads through (None on other databases).

    Normally a connection of its own, in one read-only REPEATABLE READ transaction: every table
    of an export comes from the same snapshot while progress is written through Django's. Inside
    a caller's transaction (an atomic block, a test) Django's own, so the caller's rows are seen.
    """
    if connection.vendor != "postgresql":
        yield None
        return
    if connection.in_atomic_block:
        connection.ensure_connection()
        yield connection.connection
        return
    import psycopg

    pg = connection.get_new_connection(connection.get_connection_params())
    try:
        pg.autocommit = False
        pg.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        pg.read_only = True
        yield pg
    finally:
        pg.rollback()
        pg.close()


def _count(pg, table: Table) -> int:
    if pg is not None and table.sql_from is not None:
        with pg.cursor() as cursor:
            cursor.execute(writers.count_sql(table))
            return int(cursor.fetchone()[0])
    return sum(1 for _ in table.rows())


def _write(pg, table: Table, path: Path, export_format: str, progress) -> None:
    if pg is not None and table.sql_from is not None:
        writers.write_table_postgres(pg, table, path, export_format, progress)
    else:
        writers.write_table_rows(table, path, export_format, progress)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(folder: Path, files: list[str]) -> None:
    """MANIFEST.sha256 in ``sha256sum -c`` form: "<hex>  <path>", paths relative to folder."""
    lines = [f"{sha256_file(folder / name)}  {name}\n" for name in sorted(files)]
    (folder / MANIFEST).write_text("".join(lines), encoding="utf-8")


class _Tally:
    """Rows counted now, reported once the table is written."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, rows: int) -> None:
        self.rows += rows


def build_export(
    study: Study,
    folder: Path,
    options: ExportOptions,
    *,
    on_total: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Built:
    """Write an export's files into ``folder`` (tables, codebook, package files, manifest)."""
    options = options.checked()
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    tables = build_tables(
        study,
        options.tables,
        inclusion=options.inclusion,
        include_recruitment_ids=options.include_recruitment_ids,
    )
    # A package's analysis reads ratings.csv, whatever format its tables are in.
    extra_csv = options.package and options.export_format != "csv"
    ratings = next((t for t in tables if t.name == "ratings"), None)
    written: list[tuple[str, Table, str]] = [
        (f"data/{writers.file_name(t, options.export_format)}", t, options.export_format)
        for t in tables
    ]
    if extra_csv and ratings is not None:
        written.append(("data/ratings.csv", ratings, "csv"))
    built = Built(files=[])
    with postgres_reader() as pg:
        counts = {path: _count(pg, table) for path, table, _ in written}
        if on_total is not None:
            on_total(sum(counts.values()))
        # Reading through Django's own connection (a caller's transaction), a COPY holds it:
        # progress is then written once each table is done.
        shared = pg is not None and pg is getattr(connection, "connection", None)
        for path, table, file_format in written:
            deferred = _Tally() if shared and progress is not None else None
            _write(pg, table, folder / path, file_format, deferred or progress)
            if deferred is not None:
                progress(deferred.rows)
            built.files.append(path)
            built.rows[path] = counts[path]
    codebook = export_codebook(
        study,
        [(path, table) for path, table, _ in written],
        export_format=options.export_format,
        inclusion=options.inclusion,
        include_recruitment_ids=options.include_recruitment_ids,
    )
    (folder / "codebook.json").write_text(codebook_json(codebook), encoding="utf-8")
    (folder / "codebook.md").write_text(codebook_markdown(codebook), encoding="utf-8")
    built.files += ["codebook.json", "codebook.md"]
    if options.package:
        from studies.datasets.package import write_package_files

        built.files += write_package_files(study, folder, options, built)
    write_manifest(folder, built.files)
    built.files.append(MANIFEST)
    return built


def zip_folder(folder: Path, files: list[str], target: Path, root: str) -> None:
    """Zip ``files`` of ``folder`` under ``root/``; Parquet is stored as is (compressed already)."""
    with zipfile.ZipFile(target, "w", allowZip64=True) as archive:
        for name in files:
            compress = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
            archive.write(folder / name, f"{root}/{name}", compress_type=compress, compresslevel=1)


def archive_root(study: Study, options: ExportOptions) -> str:
    return f"{study.slug}-{'replication-package' if options.package else 'export'}"


def export_to_path(study: Study, target: Path, options: ExportOptions, **callbacks) -> Built:
    """Build an export into ``target``: a zip when it ends in .zip, else a folder."""
    target = Path(target)
    if target.suffix.lower() == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
            built = build_export(study, Path(scratch), options, **callbacks)
            part = Path(scratch) / "archive.zip.part"  # one per build: no two writers share it
            zip_folder(Path(scratch), built.files, part, archive_root(study, options.checked()))
            part.replace(target)
        return built
    target.mkdir(parents=True, exist_ok=True)
    return build_export(study, target, options, **callbacks)


# --- the job -------------------------------------------------------------------------------


def export_root() -> Path:
    return Path(settings.EXPORT_ROOT)


def job_file(job: ExportJob) -> Path | None:
    """The job's finished file, if it is still there."""
    if not job.file_path:
        return None
    path = (export_root() / job.file_path).resolve()
    # A row can only ever name a file under the export root.
    if export_root().resolve() not in path.parents or not path.is_file():
        return None
    return path


def download_name(job: ExportJob) -> str:
    kind = "replication-package" if job.package else "export"
    return f"{job.study.slug}-{kind}-{job.pk}.zip"


def open_download(*, job: ExportJob, actor: AbstractBaseUser) -> tuple[BinaryIO, str]:
    """The finished export's file, opened for ``actor``, and its download name; audited.

    PermissionDenied for an export with recruitment ids unless ``actor`` owns the study;
    Http404 while it is not ready or once its file has expired.
    """
    if not may_download(actor, job):
        raise PermissionDenied(
            "Only the study's owners may download an export with recruitment ids."
        )
    path = job_file(job) if job.status == ExportJob.Status.DONE else None
    if path is None:
        raise Http404("This export is not ready, or its file has expired.")
    record_download(job=job, actor=actor)
    return open(path, "rb"), download_name(job)  # noqa: SIM115 - the response closes it


class _Progress:
    """Counts rows and writes them to the job's row at most every PROGRESS_EVERY_S."""

    def __init__(self, job_id: int) -> None:
        self.job_id, self.done, self.total_rows, self.last = job_id, 0, 0, 0.0

    def total(self, rows: int) -> None:
        ExportJob.objects.filter(pk=self.job_id).update(rows_total=rows, rows_done=0)
        self.total_rows = rows

    def __call__(self, rows: int) -> None:
        self.done += rows
        now = time.monotonic()
        if now - self.last >= PROGRESS_EVERY_S:
            self.last = now
            # Rows written since the count (a participant finishing) never show past 100%.
            done = min(self.done, self.total_rows)
            ExportJob.objects.filter(pk=self.job_id).update(rows_done=done)


def run_export(job_id: int) -> ExportJob:
    """Build one job's file. Idempotent: a redelivered task (its worker died) starts the file
    again from nothing; a finished, failed or expired job is left alone. Failures are stored
    on the job with their message, never raised."""
    claimed = ExportJob.objects.filter(pk=job_id, status__in=OPEN).update(
        status=ExportJob.Status.RUNNING, started_at=timezone.now(), error=""
    )
    job = ExportJob.objects.select_related("study").get(pk=job_id)
    if not claimed:
        return job
    options = ExportOptions(
        tuple(job.tables), job.format, job.inclusion, job.package, job.include_recruitment_ids
    )
    relative = Path(job.study.slug) / download_name(job)
    target = export_root() / relative
    progress = _Progress(job.pk)
    try:
        export_to_path(job.study, target, options, on_total=progress.total, progress=progress)
    except Exception as exc:  # stored for the researcher; the worker goes on
        logger.exception("export %s of %s failed", job.pk, job.study.slug)
        ExportJob.objects.filter(pk=job.pk).update(
            status=ExportJob.Status.FAILED,
            error=f"{type(exc).__name__}: {exc}",
            finished_at=timezone.now(),
        )
        job.refresh_from_db()
        return job
    now = timezone.now()
    ExportJob.objects.filter(pk=job.pk).update(
        status=ExportJob.Status.DONE,
        rows_done=progress.total_rows,
        file_path=str(relative),
        size_bytes=target.stat().st_size,
        sha256=sha256_file(target),
        finished_at=now,
        expires_at=now + timedelta(hours=settings.EXPORT_EXPIRY_HOURS),
    )
    job.refresh_from_db()
    return job


def expire_exports(now: datetime | None = None) -> int:
    """Beat: delete the files of jobs past their expiry and mark them expired; fail jobs no
    worker took within JOB_QUEUED_LIMIT_MINUTES, or still running after
    EXPORT_RUNNING_LIMIT_MINUTES (their worker died and nothing redelivered the task); remove
    what such a worker left half-written. Returns the number of jobs expired."""
    now = now or timezone.now()
    running_limit = settings.EXPORT_RUNNING_LIMIT_MINUTES
    ExportJob.objects.filter(
        status=ExportJob.Status.RUNNING,
        started_at__lt=now - timedelta(minutes=running_limit),
    ).update(
        status=ExportJob.Status.FAILED,
        error=f"still running after {running_limit} minutes: its worker stopped without "
        "finishing. Request the export again.",
        finished_at=now,
    )
    _remove_abandoned_scratch(now - timedelta(minutes=running_limit))
    ExportJob.objects.filter(
        status=ExportJob.Status.QUEUED,
        created_at__lt=now - timedelta(minutes=settings.JOB_QUEUED_LIMIT_MINUTES),
    ).update(
        status=ExportJob.Status.FAILED,
        error="not taken by a worker (is a worker running on the default queue?); "
        "nothing was exported. Request the export again.",
        finished_at=now,
    )
    expired = 0
    for job in ExportJob.objects.filter(status=ExportJob.Status.DONE, expires_at__lt=now):
        path = job_file(job)
        if path is not None:
            path.unlink(missing_ok=True)
        ExportJob.objects.filter(pk=job.pk).update(status=ExportJob.Status.EXPIRED, file_path="")
        expired += 1
    return expired


def _remove_abandoned_scratch(before: datetime) -> None:
    """Scratch folders (``.export-*``) a killed worker left behind, older than ``before``."""
    root = export_root()
    if not root.is_dir():
        return
    for scratch in root.glob("*/.export-*"):
        if scratch.stat().st_mtime < before.timestamp():
            shutil.rmtree(scratch, ignore_errors=True)


def jobs_for_study(study: Study):
    return (
        ExportJob.objects.filter(study=study).select_related("requested_by").order_by("-created_at")
    )


def percent(job: ExportJob) -> int:
    if job.status in (ExportJob.Status.DONE,):
        return 100
    if not job.rows_total:
        return 0
    return min(100, int(100 * job.rows_done / job.rows_total))
