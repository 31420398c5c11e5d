"""Fixtures of the false-refusal tests: the generation tests' eager tasks and chat server,
researchers, and a fixed small sample of the real PHTest file."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.generation.conftest import chat_server, eager_tasks  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[3]
PHTEST = ROOT.parent / "shared" / "data" / "phtest" / "PHTest_v0.1.csv"
# A fixed sample: both groups, the file's first rows and a few from further in.
SAMPLE_IDS = ("0", "1", "2", "3", "4", "5", "6", "7", "100", "1000", "2000", "3259")


@pytest.fixture
def ada(db):
    return get_user_model().objects.create_user("ada", password="pw-ada-123")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="pw-bob-123")


def phtest_rows() -> list[dict[str, str]]:
    # The project's shared data sits beside every checkout (CI included): missing is an error.
    assert PHTEST.exists(), f"the PHTest data set is not at {PHTEST} (../shared/data/phtest/)"
    with PHTEST.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def phtest_sample() -> bytes:
    """The sample's rows of the real PHTest CSV, as a CSV file's bytes (same columns)."""
    rows = [r for r in phtest_rows() if r["ID"] in SAMPLE_IDS]
    assert len(rows) == len(SAMPLE_IDS)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["ID", "Request", "Harmfulness"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")
