"""Shared fixtures: example studies imported and launched through the real services."""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from studies import services
from studies.models import Study
from studies.spec import StudySpec, load_spec_file
from studies.stimuli_file import read_stimuli_file

ROOT = Path(__file__).resolve().parent.parent


def _broker_per_parallel_worker() -> None:
    """Each pytest-xdist worker has a test database of its own (test_…_gw0, _gw1); it gets a
    Redis database of its own too, so a Celery worker one of them starts never takes the
    other's tasks. Workers count down from the configured database number."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    from config.celery import app

    base = os.environ.get("CELERY_BROKER_URL", settings.CELERY_BROKER_URL)
    match = re.match(r"(.*/)(\d+)$", base)
    prefix, number = (match[1], int(match[2])) if match else (base.rstrip("/") + "/", 15)
    url = f"{prefix}{max(number - int(worker[2:]), 0)}"
    os.environ["CELERY_BROKER_URL"] = url  # for worker processes the tests start
    settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    # Arrival limits count per study id, and both workers' test databases number studies alike.
    settings.CACHES[settings.ARRIVAL_LIMIT_CACHE]["LOCATION"] = url


_broker_per_parallel_worker()

# Export files of the tests (and of the workers and commands they start) go to a folder of
# their own, never the checkout's var/exports; one per pytest-xdist worker, since both workers'
# test databases number their export jobs alike.
_exports = os.environ.get("EXPORT_ROOT") or tempfile.mkdtemp(prefix="refusallab-exports-")
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and Path(_exports).name != _worker:
    _exports = str(Path(_exports) / _worker)
os.environ["EXPORT_ROOT"] = _exports
settings.EXPORT_ROOT = Path(_exports)

# The tests' recruitment-id key (annotation.recruitment_ids): fixed, so a run is repeatable and
# the processes the tests start (commands, Celery workers) read what the tests wrote. Derived
# as base64url(sha256(b"refusallab test recruitment-id key")); scripts/test.sh exports the same.
TEST_RECRUITMENT_ID_KEY = "M2QWa0L0uLiQIsYmFeWCNMfTkQAA4sAhr74Mdtyguds="
os.environ.setdefault("RECRUITMENT_ID_KEYS", TEST_RECRUITMENT_ID_KEY)
if not settings.RECRUITMENT_ID_KEYS:
    settings.RECRUITMENT_ID_KEYS = [os.environ["RECRUITMENT_ID_KEYS"]]


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take minutes start first, so the parallel workers finish together instead of
    one of them running the longest test alone at the end (pytest-django puts transactional
    tests last, where the platform simulation would otherwise land)."""
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


SEED_SPEC = ROOT / "examples" / "refusal-perception" / "study.yaml"
EVERY_TYPE_SPEC = ROOT / "examples" / "every-type" / "study.yaml"


def _load(path: Path) -> tuple[StudySpec, list]:
    spec, stimuli_path = load_spec_file(path)
    return spec, read_stimuli_file(stimuli_path)


@pytest.fixture(autouse=True, scope="session")
def plain_http_settings():
    """Tests speak plain HTTP to the test client and live server, with unhashed static files
    and a fast password hasher.

    Session scope and autouse put this before the live server starts, whose middleware
    reads these settings once.
    """
    override = override_settings(
        SECURE_SSL_REDIRECT=False,
        SECURE_HSTS_SECONDS=0,
        SESSION_COOKIE_SECURE=False,
        CSRF_COOKIE_SECURE=False,
        STORAGES={
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        },
        # The production hasher (PBKDF2, a million rounds) takes about a second per password on
        # the test machines, and the tests create and log in hundreds of users. MD5 hashes in the
        # tests only; the production hashers stay listed, so passwords that commands and workers
        # the tests start hash the production way are still checked.
        PASSWORD_HASHERS=[
            "django.contrib.auth.hashers.MD5PasswordHasher",
            *settings.PASSWORD_HASHERS,
        ],
    )
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session")
def seed_spec() -> tuple[StudySpec, list]:
    return _load(SEED_SPEC)


@pytest.fixture(scope="session")
def every_type_spec() -> tuple[StudySpec, list]:
    return _load(EVERY_TYPE_SPEC)


@pytest.fixture
def make_study(seed_spec):
    """Import (and by default launch) the seed example study, with spec fields overridden."""

    def make(
        *, launch: bool = True, base: tuple[StudySpec, list] | None = None, **overrides
    ) -> Study:
        spec, rows = base or seed_spec
        # The spec is immutable (and StimulusRow frozen), so sharing the session's copy is safe.
        spec = dataclasses.replace(spec, **overrides)
        study = services.import_study(spec=spec, stimuli=list(rows))
        if launch:
            services.launch_study(study=study)
            study.refresh_from_db()
        return study

    return make
