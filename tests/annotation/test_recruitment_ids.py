"""Recruitment ids: encrypted at rest with the configured keys, stored at join in the same
INSERT, rotated by a command, erased when the study's retention period ends."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from annotation import recruitment_ids, services
from annotation.models import Participant
from annotation.recruitment_ids import (
    RecruitmentKeyError,
    encrypt_recruitment_id,
    recruitment_keys_configured,
    reveal_recruitment_id,
)
from studies.lifecycle import close_study
from studies.models import AuditEvent, Study
from studies.spec import SpecError, dump_spec, load_spec
from tests.studies.test_spec import BASE, edit

ROOT = Path(__file__).resolve().parents[2]
RAW = "5f2a9c0e8b7d4e1a3c6b9d02"  # shaped like a Prolific id
OTHER_KEY = Fernet.generate_key().decode()


# --------------------------------------------------------------------------- the cipher


def test_an_encrypted_id_reads_back_and_never_contains_the_id():
    token = encrypt_recruitment_id(RAW)
    assert RAW not in token and RAW.encode().hex() not in token
    assert reveal_recruitment_id(token) == RAW
    assert encrypt_recruitment_id(RAW) != token  # a fresh IV each time: equal ids look unequal


def test_another_key_cannot_read_a_stored_id(settings):
    token = encrypt_recruitment_id(RAW)
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY]
    with pytest.raises(RecruitmentKeyError, match="no key in RECRUITMENT_ID_KEYS can read"):
        reveal_recruitment_id(token)
    # The old key kept after the new one: both read, the new one writes.
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY, os.environ["RECRUITMENT_ID_KEYS"]]
    assert reveal_recruitment_id(token) == RAW
    assert Fernet(OTHER_KEY.encode()).decrypt(encrypt_recruitment_id(RAW).encode()) == RAW.encode()


def test_garbage_is_a_key_error_not_a_crash():
    with pytest.raises(RecruitmentKeyError):
        reveal_recruitment_id("not a token")


def test_without_keys_and_debug_off_no_id_can_be_stored(settings, caplog):
    settings.RECRUITMENT_ID_KEYS = []
    settings.DEBUG = False
    assert not recruitment_keys_configured()
    with pytest.raises(RecruitmentKeyError, match="no recruitment id key is configured"):
        encrypt_recruitment_id(RAW)


def test_debug_without_keys_uses_a_development_key_derived_from_the_secret_key(settings, caplog):
    settings.RECRUITMENT_ID_KEYS = []
    settings.DEBUG = True
    settings.SECRET_KEY = "demo-secret-for-this-test"
    with caplog.at_level("WARNING", logger="annotation.recruitment_ids"):
        token = encrypt_recruitment_id(RAW)
    assert "development key derived from SECRET_KEY" in caplog.text
    assert recruitment_keys_configured()
    expected = recruitment_ids.development_key("demo-secret-for-this-test")
    assert Fernet(expected).decrypt(token.encode()) == RAW.encode()
    # The same secret gives the same key on the next start; another secret does not.
    assert recruitment_ids.development_key("demo-secret-for-this-test") == expected
    assert recruitment_ids.development_key("another-secret") != expected


# --------------------------------------------------------------------------- at join


def _join(study: Study, pid: str) -> Participant:
    response = Client().get(f"/s/{study.slug}/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=x")
    assert response.status_code == 302
    return Participant.objects.filter(study=study).latest("pk")


def _row_text(participant: Participant) -> str:
    """The participant's whole database row, every column, as PostgreSQL writes it."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT row_to_json(p)::text FROM {Participant._meta.db_table} p WHERE id = %s",
            [participant.pk],
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db
def test_joining_stores_the_id_encrypted_and_unreadable_without_the_key(make_study, settings):
    study = make_study(target_participants=2)
    participant = _join(study, RAW)
    row = _row_text(participant)
    assert RAW not in row and RAW.encode().hex() not in row
    assert participant.recruitment_id_encrypted
    assert reveal_recruitment_id(participant.recruitment_id_encrypted) == RAW
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY]
    with pytest.raises(RecruitmentKeyError):
        reveal_recruitment_id(participant.recruitment_id_encrypted)


@pytest.mark.django_db
def test_without_a_key_in_production_only_the_pseudonym_is_kept(make_study, settings):
    settings.RECRUITMENT_ID_KEYS = []
    settings.DEBUG = False
    study = make_study(target_participants=2)
    participant = _join(study, RAW)
    assert participant.recruitment_id_encrypted == ""
    assert RAW not in _row_text(participant)
    # The participant still takes part: the id is only for payment.
    assert participant.pseudonym and participant.status == Participant.Status.ACTIVE


@pytest.mark.django_db
def test_reopening_the_link_keeps_the_first_stored_id(make_study):
    study = make_study(target_participants=2)
    first = _join(study, RAW)
    again = services.join_study(study=study, external_id=RAW, recruitment={})
    assert again.pk == first.pk
    assert again.recruitment_id_encrypted == first.recruitment_id_encrypted


# --------------------------------------------------------------------------- rotation


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    db = connection.settings_dict
    environment = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        **env,
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_rotation_re_encrypts_every_id_with_the_new_key_and_is_idempotent(make_study, settings):
    study = make_study(target_participants=3)
    old_key = os.environ["RECRUITMENT_ID_KEYS"]
    pids = ["ROT-A", "ROT-B", "ROT-C"]
    for pid in pids:
        _join(study, pid)
    both = f"{OTHER_KEY},{old_key}"
    first = _manage("rotate_recruitment_keys", "--batch-size", "2", RECRUITMENT_ID_KEYS=both)
    assert first.returncode == 0, first.stderr
    assert "3 recruitment ids re-encrypted with the first key, 0 already current" in first.stdout
    # The old key is no longer needed: the new one alone reads every id.
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY]
    tokens = Participant.objects.filter(study=study).order_by("pk")
    assert [reveal_recruitment_id(p.recruitment_id_encrypted) for p in tokens] == pids
    # Runs again in-process (the key list from the environment was read by the shell run above).
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY, old_key]
    again = StringIO()
    call_command("rotate_recruitment_keys", stdout=again)
    assert "0 recruitment ids re-encrypted with the first key, 3 already current" in (
        again.getvalue()
    )
    # An id no configured key reads is reported and left alone, and the command fails.
    settings.RECRUITMENT_ID_KEYS = [Fernet.generate_key().decode()]
    lost = StringIO()
    with pytest.raises(CommandError, match="3 recruitment ids could not be read"):
        call_command("rotate_recruitment_keys", stdout=lost)
    assert "3 unreadable" in lost.getvalue()
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY]
    assert [reveal_recruitment_id(p.recruitment_id_encrypted) for p in tokens.all()] == pids


@pytest.mark.django_db
def test_rotation_never_brings_back_an_erased_id(make_study, settings):
    study = make_study(target_participants=2)
    participant = _join(study, RAW)
    settings.RECRUITMENT_ID_KEYS = [OTHER_KEY, os.environ["RECRUITMENT_ID_KEYS"]]
    Participant.objects.filter(pk=participant.pk).update(recruitment_id_encrypted="")
    counts = services.rotate_recruitment_ids()
    assert (counts.rotated, counts.current, counts.unreadable) == (0, 0, 0)
    participant.refresh_from_db()
    assert participant.recruitment_id_encrypted == ""


# --------------------------------------------------------------------------- retention


@pytest.mark.django_db
def test_ids_are_erased_exactly_when_the_retention_period_ends(make_study):
    study = make_study(target_participants=3, retention_days=30)
    kept_study = make_study(slug="still-open", target_participants=2)
    for pid in ("RET-1", "RET-2"):
        _join(study, pid)
    _join(kept_study, "OPEN-1")
    close_study(study=study)
    study.refresh_from_db()
    assert study.closed_at is not None
    due = study.closed_at + timedelta(days=30)

    assert services.erase_expired_recruitment_ids(now=due - timedelta(seconds=1)) == 0
    assert not Participant.objects.filter(study=study, recruitment_id_encrypted="").exists()
    assert not AuditEvent.objects.filter(action="recruitment_ids_erased").exists()

    assert services.erase_expired_recruitment_ids(now=due) == 2
    erased = Participant.objects.filter(study=study)
    assert {p.recruitment_id_encrypted for p in erased} == {""}
    assert {p.recruitment_id_erased_at for p in erased} == {due}
    audit = AuditEvent.objects.get(action="recruitment_ids_erased")
    assert audit.study == study and audit.detail["ids"] == 2 and audit.actor is None
    # The open study's id stays; a second sweep erases nothing more and writes no row.
    assert Participant.objects.get(study=kept_study).recruitment_id_encrypted
    assert services.erase_expired_recruitment_ids(now=due + timedelta(days=1)) == 0
    assert AuditEvent.objects.filter(action="recruitment_ids_erased").count() == 1


@pytest.mark.django_db
def test_the_beat_schedule_runs_the_erasure(settings):
    from annotation import tasks

    entry = settings.CELERY_BEAT_SCHEDULE["erase-expired-recruitment-ids"]
    assert entry["task"] == tasks.erase_expired_recruitment_ids.name
    assert entry["schedule"] <= 3600


@pytest.mark.django_db
def test_closing_a_study_records_when(make_study):
    study = make_study(target_participants=2)
    before = timezone.now()
    close_study(study=study)
    study.refresh_from_db()
    assert before <= study.closed_at <= timezone.now()


# --------------------------------------------------------------------------- the spec key


def test_retention_days_round_trips_through_the_spec():
    spec = load_spec(
        edit("target_participants: 10\n", "target_participants: 10\nretention_days: 14\n")
    )
    assert spec.retention_days == 14
    assert "retention_days: 14" in dump_spec(spec)
    assert load_spec(dump_spec(spec)) == spec
    assert load_spec(BASE).retention_days == 90


@pytest.mark.parametrize("value", ["0", "-3", '"90"', "4000", "true"])
def test_a_bad_retention_is_an_error_naming_its_line(value: str):
    text = edit("target_participants: 10\n", f"target_participants: 10\nretention_days: {value}\n")
    with pytest.raises(SpecError) as info:
        load_spec(text)
    assert "line 6, retention_days: must be an integer between 1 and 3650" in str(info.value)


@pytest.mark.django_db
def test_retention_days_is_stored_on_import_and_exported_again(make_study):
    from studies.selectors import study_spec

    study = make_study(launch=False, retention_days=7)
    assert study.retention_days == 7
    assert study_spec(study).retention_days == 7
