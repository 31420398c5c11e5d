"""Stimuli upload with a preview before anything is saved, and the browsable table of queries.

Between the preview and the confirmation the uploaded file waits in a staging directory
(``settings.STIMULI_UPLOAD_DIR``, ``var/uploads`` by default) under a random token, beside a
small record of who uploaded it for which study, with which options and when. Why a staging
file rather than the file's bytes signed into a hidden field: the size limit then does not
depend on Django's form-field limit (DATA_UPLOAD_MAX_MEMORY_SIZE), the browser does not send
the file twice, and the token alone (unguessable, bound to the user and the study, expiring
after ``STIMULI_UPLOAD_MAX_AGE`` seconds) reveals nothing. Nothing touches the study's tables
until ``confirm_upload`` calls ``studies.services.import_stimuli``.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from studies.domain import RESPONSE_TYPES
from studies.models import Query, ResponseVariant, Study
from studies.services import EDITABLE_STATUSES, StimuliImportSummary, import_stimuli
from studies.stimuli_file import StimuliFileError, StimulusRow, iter_stimuli, parse_stimuli

_TOKEN = re.compile(r"[A-Za-z0-9_-]{40,64}")


def max_upload_bytes() -> int:
    return settings.STIMULI_UPLOAD_MAX_BYTES


def max_upload_age_s() -> int:
    return settings.STIMULI_UPLOAD_MAX_AGE


def staging_dir() -> Path:
    return Path(settings.STIMULI_UPLOAD_DIR)


class UploadError(Exception):
    """An upload that cannot be previewed or confirmed; the message says what to do."""


# --- Preview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StimuliPreview:
    """What importing a file would do, computed without writing anything."""

    filename: str
    replace: bool
    rows: list[StimulusRow] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # Texts that replacing deletes although the file cannot bring them back (generated ones).
    lost_texts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)


def preview_stimuli(*, study: Study, data: bytes, filename: str, replace: bool) -> StimuliPreview:
    """Parse the file and compare it with the study's queries; writes nothing."""
    try:
        rows = parse_stimuli(data, filename)
    except StimuliFileError as exc:
        # A parser that also hands back the rows it could read lets the table show them.
        return StimuliPreview(
            filename=filename,
            replace=replace,
            rows=list(getattr(exc, "rows", []) or []),
            problems=exc.problems,
        )
    existing = set(study.queries.values_list("query_id", flat=True))
    in_file = [row.query_id for row in rows]
    removed = sorted(existing - set(in_file)) if replace else []
    lost = 0
    if replace:
        # import_stimuli(replace=True) recreates every query: only the file's texts survive.
        lost = (
            ResponseVariant.objects.filter(query__study=study)
            .exclude(source=ResponseVariant.Source.IMPORTED)
            .count()
        )
    return StimuliPreview(
        filename=filename,
        replace=replace,
        rows=rows,
        new=[q for q in in_file if q not in existing],
        updated=[q for q in in_file if q in existing],
        removed=removed,
        lost_texts=lost,
    )


def check_upload_size(size: int) -> None:
    limit = max_upload_bytes()
    if size > limit:
        raise UploadError(
            f"the file is {size / 1024 / 1024:.1f} MB; stimuli files may be at most "
            f"{limit / 1024 / 1024:.1f} MB. Split it and import the parts one after the other "
            "(without 'replace')."
        )


def check_stimuli_editable(study: Study) -> None:
    if study.status not in EDITABLE_STATUSES:
        raise UploadError(
            f"this study is {study.status}; its stimuli can no longer be changed. "
            "Duplicate the study to make a new version with other stimuli."
        )


# --- Staging between preview and confirmation -----------------------------------------


@dataclass(frozen=True)
class StagedUpload:
    token: str
    data: bytes
    filename: str
    replace: bool


def _paths(token: str) -> tuple[Path, Path]:
    base = staging_dir()
    return base / f"{token}.json", base / f"{token}.upload"


def _remove_expired(now: float) -> None:
    base = staging_dir()
    if not base.is_dir():
        return
    for path in base.glob("*.json"):
        try:
            created = json.loads(path.read_text()).get("created", 0)
        except (OSError, ValueError):
            created = 0
        if now - created > max_upload_age_s():
            discard_upload(path.stem)


def stage_upload(
    *, study: Study, user: AbstractBaseUser, data: bytes, filename: str, replace: bool
) -> str:
    """Keep an uploaded file until it is confirmed; returns the token that names it."""
    check_upload_size(len(data))
    now = time.time()
    _remove_expired(now)
    staging_dir().mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    meta_path, data_path = _paths(token)
    data_path.write_bytes(data)
    record = {
        "study": study.pk,
        "user": user.pk,
        "filename": Path(filename).name,
        "replace": bool(replace),
        "created": now,
    }
    # The record is written last: a half-written upload has no record and is never read.
    meta_path.write_text(json.dumps(record))
    return token


EXPIRED_MESSAGE = (
    "This upload is no longer available (it expired after {minutes} minutes, was already "
    "imported, or the form was altered). Nothing was saved; please upload the file again."
)


def load_upload(*, study: Study, user: AbstractBaseUser, token: str) -> StagedUpload:
    """The staged file named by ``token``, if this user staged it for this study in time."""
    expired = UploadError(EXPIRED_MESSAGE.format(minutes=max_upload_age_s() // 60))
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise expired
    meta_path, data_path = _paths(token)
    try:
        record = json.loads(meta_path.read_text())
        data = data_path.read_bytes()
    except (OSError, ValueError):
        raise expired from None
    if record.get("study") != study.pk or record.get("user") != user.pk:
        raise expired
    if time.time() - record.get("created", 0) > max_upload_age_s():
        discard_upload(token)
        raise expired
    return StagedUpload(
        token=token, data=data, filename=record["filename"], replace=record["replace"]
    )


def discard_upload(token: str) -> None:
    if not _TOKEN.fullmatch(token):
        return
    for path in _paths(token):
        path.unlink(missing_ok=True)


def confirm_upload(
    *, study: Study, user: AbstractBaseUser, token: str
) -> tuple[StagedUpload, StimuliImportSummary]:
    """Import the staged file as previewed; raises UploadError, StimuliFileError or
    StudyStateError (from import_stimuli) and then changes nothing."""
    staged = load_upload(study=study, user=user, token=token)
    rows = iter_stimuli(io.BytesIO(staged.data), staged.filename)
    summary = import_stimuli(study=study, rows=rows, replace=staged.replace, actor=user)
    discard_upload(token)
    return staged, summary


# --- Browsing the queries ---------------------------------------------------------------


def query_table(study: Study, *, search: str = "", category: str = "") -> QuerySet[Query]:
    """The study's queries, optionally narrowed by a search in id/text and by category."""
    queries = study.queries.prefetch_related("scenarios").order_by("query_id")
    search = search.strip()
    if search:
        queries = queries.filter(Q(query_id__icontains=search) | Q(text__icontains=search))
    if category:
        queries = queries.filter(category=category)
    return queries


def query_categories(study: Study) -> list[str]:
    return sorted(set(study.queries.values_list("category", flat=True)))


def approved_types(queries: list[Query]) -> dict[int, set[str]]:
    """For each query (by pk), the response types that have an approved text."""
    approved: dict[int, set[str]] = defaultdict(set)
    for query_pk, response_type in ResponseVariant.objects.filter(
        query__in=queries, review_status=ResponseVariant.ReviewStatus.APPROVED
    ).values_list("query_id", "response_type"):
        approved[query_pk].add(response_type)
    return approved


@dataclass(frozen=True)
class QueryRow:
    query: Query
    # (response type, whether it has an approved text), in the domain's order.
    types: list[tuple[str, bool]]


def query_rows(queries: list[Query]) -> list[QueryRow]:
    approved = approved_types(queries)
    return [
        QueryRow(query=q, types=[(t, t in approved[q.pk]) for t in RESPONSE_TYPES]) for q in queries
    ]
