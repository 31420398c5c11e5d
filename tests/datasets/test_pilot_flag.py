"""Pilot participants are flagged in the data: both exports and the codebook say who they were."""

from __future__ import annotations

import csv
import io

import pytest

from studies import lifecycle
from studies.datasets.codebook import build_codebook
from studies.exports import write_block_answers_csv, write_ratings_csv
from tests.analysis.test_platform_simulation import simulate_participants

pytestmark = pytest.mark.django_db


def _rows(write, study) -> list[dict]:
    handle = io.StringIO()
    write(study, handle, include="all")
    return list(csv.DictReader(io.StringIO(handle.getvalue())))


def test_pilot_then_full_launch_participants_are_told_apart_in_the_exports(make_study):
    study = make_study(launch=False, target_participants=4)
    lifecycle.launch_study(study=study, pilot_slots=1)
    simulate_participants(study, 1, seed=1)
    lifecycle.launch_full(study=study)
    simulate_participants(study, 1, seed=1, first=1)

    ratings = _rows(write_ratings_csv, study)
    by_participant = {}
    for row in ratings:
        by_participant.setdefault(row["participant_id"], set()).add(row["is_pilot"])
    assert sorted(by_participant.values(), key=sorted) == [{"False"}, {"True"}]

    handle = io.StringIO()
    write_block_answers_csv(study, handle, include="all")
    assert "is_pilot" in handle.getvalue().splitlines()[0].split(",")

    files = build_codebook(study)["files"]
    for name in ("ratings.csv", "block-answers.csv"):
        assert "is_pilot" in [column["name"] for column in files[name]["columns"]]
