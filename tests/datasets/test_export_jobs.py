"""Export jobs: requested from the page or the API (audited), built on a real Celery worker with
progress in the job's row, downloaded only through the permission check, gone after expiry."""

from __future__ import annotations

import html
import io
import os
import subprocess
import zipfile
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from studies.datasets import exports
from studies.models import AuditEvent, ExportJob, StudyMembership
from tests.datasets.export_fixtures import RAW_IDS, recorded_study
from tests.workers import CeleryWorker, purge_queues, wait_for_progress


def _people(study) -> dict[str, Client]:
    users = get_user_model().objects
    clients = {}
    for name in ("owner", "viewer", "stranger"):
        user = users.create_user(name, password="pw-123-export")
        if name != "stranger":
            StudyMembership.objects.create(study=study, user=user, role=name)
        clients[name] = Client()
        clients[name].force_login(user)
    clients["anonymous"] = Client()
    return clients


def _unzip(body: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}


@pytest.mark.django_db(transaction=True)
def test_an_export_runs_on_a_real_worker_with_progress_and_downloads(make_study, tmp_path):
    purge_queues("default")
    study = recorded_study(make_study)
    clients = _people(study)
    log = tmp_path / "worker.log"
    worker = CeleryWorker("default", log_path=log).start()
    try:
        response = clients["viewer"].post(
            f"/studies/{study.slug}/exports/",
            {"tables": ["ratings", "trials"], "export_format": "parquet", "inclusion": "all"},
        )
        assert response.status_code == 302
        job = ExportJob.objects.get(study=study)
        seen: list[tuple[str, int, int]] = []

        def progress():
            job.refresh_from_db()
            seen.append((job.status, job.rows_done, job.rows_total))
            return seen[-1], log.stat().st_size if log.exists() else 0

        wait_for_progress(
            lambda: job.status not in exports.OPEN, progress=progress, worker=worker, log=log
        )
    finally:
        worker.stop()
    assert job.status == "done", job.error
    assert job.rows_total > 100 and job.rows_done == job.rows_total
    assert job.expires_at > timezone.now() + timedelta(hours=1)
    # The progress the page polls came from the row: it was running before it was done.
    assert ("done", job.rows_total, job.rows_total) in seen

    page = clients["viewer"].get(f"/studies/{study.slug}/exports/").content.decode()
    download = f"/studies/{study.slug}/exports/{job.pk}/download/"
    assert download in page and "Include recruitment ids" not in page
    response = clients["viewer"].get(download)
    assert response.status_code == 200
    files = _unzip(b"".join(response.streaming_content))
    assert set(files) == {
        "data/ratings.parquet",
        "data/trials.parquet",
        "codebook.json",
        "codebook.md",
        "MANIFEST.sha256",
    }
    folder = tmp_path / "unzipped"
    for name, body in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(body)
    check = subprocess.run(
        ["sha256sum", "-c", "MANIFEST.sha256"], cwd=folder, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    actions = list(
        AuditEvent.objects.filter(study=study, action__startswith="export").values_list(
            "action", "actor__username", "detail"
        )
    )
    requested = next(a for a in actions if a[0] == "export_requested")
    assert requested[1] == "viewer"
    assert requested[2] == {
        "job": job.pk,
        "tables": ["ratings", "trials"],
        "format": "parquet",
        "inclusion": "all",
        "package": False,
        "recruitment_ids": False,
    }
    assert ("export_downloaded", "viewer") in [a[:2] for a in actions]


@pytest.mark.django_db
def test_recruitment_ids_only_for_owners_and_downloads_through_the_check(make_study):
    study = recorded_study(make_study)
    clients = _people(study)
    url = f"/studies/{study.slug}/exports/"
    form = {"tables": ["participants"], "export_format": "csv", "inclusion": "all"}

    # A viewer is not offered the option, and a hand-made request with it is refused.
    assert "include_recruitment_ids" not in clients["viewer"].get(url).content.decode()
    assert "include_recruitment_ids" in clients["owner"].get(url).content.decode()
    response = clients["viewer"].post(url, {**form, "include_recruitment_ids": "on"})
    assert response.status_code == 403
    assert "Only the study's owners and superusers" in html.unescape(response.content.decode())
    api = f"/api/studies/{study.slug}/exports/"
    response = clients["viewer"].post(
        api,
        {"tables": ["participants"], "include_recruitment_ids": True},
        content_type="application/json",
    )
    assert response.status_code == 403
    assert not ExportJob.objects.exists()

    # Bad options: a clear message, nothing stored.
    response = clients["owner"].post(url, {**form, "tables": []})
    assert response.status_code == 400 and "Choose at least one table" in response.content.decode()
    response = clients["owner"].post(api, {"format": "xlsx"}, content_type="application/json")
    assert response.status_code == 400 and "format" in response.json()
    assert not ExportJob.objects.exists()

    assert clients["owner"].post(url, {**form, "include_recruitment_ids": "on"}).status_code == 302
    with_ids = ExportJob.objects.get()
    assert with_ids.include_recruitment_ids
    exports.run_export(with_ids.pk)  # what the worker runs (no commit here, so no task)
    response = clients["owner"].post(api, {"tables": ["ratings"]}, content_type="application/json")
    assert response.status_code == 201 and response.json()["status"] == "queued"
    plain = ExportJob.objects.get(pk=response.json()["id"])
    exports.run_export(plain.pk)

    ids_url = f"{url}{with_ids.pk}/download/"
    plain_url = f"{url}{plain.pk}/download/"
    for api_style in (False, True):
        if api_style:
            ids_url = f"{api}{with_ids.pk}/download/"
            plain_url = f"{api}{plain.pk}/download/"
        assert clients["stranger"].get(plain_url).status_code == 404
        assert clients["stranger"].get(ids_url).status_code == 404
        assert clients["viewer"].get(ids_url).status_code == 403
        assert clients["viewer"].get(plain_url).status_code == 200
        anonymous = clients["anonymous"].get(plain_url).status_code
        assert anonymous in ((401, 403) if api_style else (302,))
        response = clients["owner"].get(ids_url)
        assert response.status_code == 200
        participants = _unzip(b"".join(response.streaming_content))["data/participants.csv"]
        assert all(raw.encode() in participants for raw in RAW_IDS)
    detail = clients["viewer"].get(f"{api}{plain.pk}/").json()
    assert detail["status"] == "done" and detail["percent"] == 100
    assert detail["rows_done"] == detail["rows_total"] > 0
    downloads = AuditEvent.objects.filter(study=study, action="export_downloaded")
    assert downloads.filter(detail__recruitment_ids=True, actor__username="owner").count() == 2

    # Expired: the beat sweep deletes the files, the jobs say so, downloads are gone.
    paths = [exports.job_file(job) for job in ExportJob.objects.all()]
    assert all(p is not None and p.exists() for p in paths)
    later = timezone.now() + timedelta(hours=settings.EXPORT_EXPIRY_HOURS + 1)
    assert exports.expire_exports(now=later) == 2
    assert not any(p.exists() for p in paths)
    assert set(ExportJob.objects.values_list("status", flat=True)) == {"expired"}
    assert clients["owner"].get(f"{url}{plain.pk}/download/").status_code == 404
    assert "expired" in clients["owner"].get(url).content.decode()


@pytest.mark.django_db
def test_a_redelivered_task_is_idempotent_and_the_sweep_fails_lost_jobs(make_study):
    study = make_study(target_participants=2)
    options = exports.ExportOptions(tables=("ratings",))
    done = exports.request_export(study=study, actor=None, options=options)
    exports.run_export(done.pk)
    done.refresh_from_db()
    first = (done.file_path, done.sha256, done.finished_at)
    # Delivered again (acks_late after a lost acknowledgement): a finished job is left alone.
    assert exports.run_export(done.pk).status == "done"
    done.refresh_from_db()
    assert (done.file_path, done.sha256, done.finished_at) == first

    queued = exports.request_export(study=study, actor=None, options=options)
    running = exports.request_export(study=study, actor=None, options=options)
    long_ago = timezone.now() - timedelta(days=1)
    ExportJob.objects.filter(pk=queued.pk).update(created_at=long_ago)
    ExportJob.objects.filter(pk=running.pk).update(status="running", started_at=long_ago)
    scratch = exports.export_root() / study.slug / ".export-left-by-a-killed-worker"
    scratch.mkdir(parents=True)
    (scratch / "ratings.csv").write_text("half")
    old = long_ago.timestamp()
    os.utime(scratch, (old, old))

    exports.expire_exports()
    queued.refresh_from_db()
    running.refresh_from_db()
    assert queued.status == "failed" and "not taken by a worker" in queued.error
    assert running.status == "failed" and "stopped without finishing" in running.error
    assert not scratch.exists()
    assert ExportJob.objects.get(pk=done.pk).status == "done"  # not expired yet
    # A failed job is not run by a late delivery either.
    assert exports.run_export(running.pk).status == "failed"


@pytest.mark.django_db
def test_the_results_pages_direct_downloads_are_audited_too(make_study):
    study = make_study(target_participants=2)
    clients = _people(study)
    for table, path in (("ratings", "ratings.csv"), ("block_answers", "block-answers.csv")):
        response = clients["viewer"].get(f"/studies/{study.slug}/results/completed/{path}")
        assert response.status_code == 200
        b"".join(response.streaming_content)
        event = AuditEvent.objects.filter(study=study, action="export_streamed").latest("pk")
        assert event.actor.username == "viewer"
        assert event.detail == {
            "tables": [table],
            "format": "csv",
            "inclusion": "completed",
            "package": False,
            "recruitment_ids": False,
        }
