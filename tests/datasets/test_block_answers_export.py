"""The block-answers export: one typed row per participant × block question, as downloaded."""

from __future__ import annotations

import csv
import io
import json

import pytest

from annotation.models import Participant
from studies.exports import write_block_answers_csv, write_ratings_csv

pytestmark = pytest.mark.django_db

COLUMNS = [
    "participant_id",
    "participant_status",
    "excluded",
    "is_pilot",
    "block",
    "question",
    "type",
    "value",
    "answered_at",
]


def rows_of(text: str) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == COLUMNS
    return list(reader)


def test_every_submitted_block_question_is_one_typed_row(answered):
    handle = io.StringIO()
    count = write_block_answers_csv(answered, handle, include="all")
    rows = rows_of(handle.getvalue())
    assert count == len(rows) == 5 + 5 + 3  # two completed runs, one before block only
    by_participant: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_participant.setdefault(row["participant_id"], {})[row["question"]] = row
    assert len(by_participant) == 3  # the declined participant has no rows
    statuses = sorted(
        {next(iter(answers.values()))["participant_status"] for answers in by_participant.values()}
    )
    assert statuses == ["active", "completed"]

    first, second, third = by_participant.values()
    assert [r["question"] for r in first.values()] == [
        "age_group",
        "ai_tools",
        "chatbot_days",
        "ai_trust",
        "comment",
    ]
    assert first["age_group"] == {
        **first["age_group"],
        "block": "demographics",
        "type": "single_choice",
        "value": "25–34",
    }
    assert json.loads(first["ai_tools"]["value"]) == ["ChatGPT", "Gemini"]
    assert first["chatbot_days"]["value"] == "3" and first["chatbot_days"]["type"] == "number"
    assert first["ai_trust"] == {
        **first["ai_trust"],
        "block": "final",
        "type": "likert",
        "value": "5",
    }
    assert first["comment"]["value"] == 'ok; "fine", thanks'
    assert first["comment"]["answered_at"]
    # An optional question left empty still has its row, with no value and no answer time.
    assert second["comment"]["value"] == "" and second["comment"]["answered_at"] == ""
    assert json.loads(third["ai_tools"]["value"]) == ["Other; none of these"]
    assert third["chatbot_days"]["value"] == "0.5"
    assert set(third) == {"age_group", "ai_tools", "chatbot_days"}


def test_completed_only_and_ids_match_the_ratings_export(answered):
    handle = io.StringIO()
    write_block_answers_csv(answered, handle, include="completed")
    rows = rows_of(handle.getvalue())
    assert {r["participant_status"] for r in rows} == {"completed"}
    ratings = io.StringIO()
    write_ratings_csv(answered, ratings, include="completed")
    rating_ids = {r["participant_id"] for r in csv.DictReader(io.StringIO(ratings.getvalue()))}
    assert {r["participant_id"] for r in rows} == rating_ids
    # Pseudonymous: neither the recruitment id nor the whole keyed hash is in the file.
    text = handle.getvalue()
    assert "PID-SECRET" not in text
    assert all(p.pseudonym not in text for p in Participant.objects.all())


def test_download_from_the_results_page(answered, researchers):
    slug = answered.slug
    page = researchers("viewer").get(f"/studies/{slug}/results/").content.decode()
    assert f'href="/studies/{slug}/results/included/block-answers.csv"' in page
    assert f'href="/studies/{slug}/results/codebook.md"' in page
    assert f'href="/studies/{slug}/results/codebook.json"' in page
    response = researchers("viewer").get(f"/studies/{slug}/results/all/block-answers.csv")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{slug}-all-block-answers.csv"'
    rows = rows_of(b"".join(response.streaming_content).decode())
    assert len(rows) == 13
    assert (
        researchers("owner").get(f"/studies/{slug}/results/nope/block-answers.csv").status_code
        == 404
    )
    assert (
        researchers("stranger").get(f"/studies/{slug}/results/all/block-answers.csv").status_code
        == 404
    )
    anonymous = researchers(None).get(f"/studies/{slug}/results/all/block-answers.csv")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
