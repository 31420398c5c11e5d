"""The codebook: every exported column and every question of the study, without PII."""

from __future__ import annotations

import json

import pytest

from annotation.models import Participant
from annotation.selectors import BLOCK_ANSWER_COLUMNS, long_format_columns
from studies.datasets.codebook import build_codebook, codebook_json, codebook_markdown

pytestmark = pytest.mark.django_db


def test_codebook_describes_every_column_and_question(answered):
    book = build_codebook(answered)
    ratings = book["files"]["ratings.csv"]["columns"]
    assert [c["name"] for c in ratings] == long_format_columns(answered)
    assert all(c["meaning"] and c["type"] and c["values"] for c in ratings), ratings
    by_name = {c["name"]: c for c in ratings}
    assert by_name["refusal_strategy"]["values"] == [
        "direct_refusal",
        "explanation_based",
        "redirection",
        "partial_compliance",
    ]
    assert "declined" in by_name["participant_status"]["values"]
    assert by_name["value"]["values"] == "1–7"
    assert "attention_1" in by_name["question"]["values"]
    assert "age_group" not in by_name["question"]["values"]  # block questions are elsewhere

    items = {q["key"]: q for q in book["item_questions"]}
    assert len(items) == 10
    assert items["frustration"]["reverse_coded"] is True
    assert items["helpfulness"] == {
        "key": "helpfulness",
        "construct": "affect",
        "text": "The response was helpful to me.",
        "scale": {"points": 7, "anchors": items["helpfulness"]["scale"]["anchors"]},
        "reverse_coded": False,
        "required": True,
    }
    assert items["helpfulness"]["scale"]["anchors"]["1"] == "Strongly disagree"
    assert [(c["key"], c["correct"], c["after_item"]) for c in book["attention_checks"]] == [
        ("attention_1", 3, 3),
        ("attention_2", 3, 6),
    ]

    blocks = {b["key"]: b for b in book["blocks"]}
    assert [b["placement"] for b in book["blocks"]] == ["before", "after"]
    demographics = {q["key"]: q for q in blocks["demographics"]["questions"]}
    assert demographics["ai_tools"]["options"][-1] == "Other; none of these"
    assert (demographics["chatbot_days"]["min"], demographics["chatbot_days"]["max"]) == (0, 7)
    final = {q["key"]: q for q in blocks["final"]["questions"]}
    assert final["ai_trust"]["scale"] == {
        "points": 5,
        "anchors": {"1": "Not at all", "5": "Completely"},
    }
    assert final["comment"]["max_length"] == 20 and final["comment"]["required"] is False

    block_columns = book["files"]["block-answers.csv"]
    assert [c["name"] for c in block_columns["columns"]] == list(BLOCK_ANSWER_COLUMNS)
    assert "JSON list" in block_columns["value_encoding"]["multiple_choice"]


def test_markdown_and_json_renderings_hold_the_same_codebook(answered):
    book = build_codebook(answered)
    assert json.loads(codebook_json(book)) == book
    markdown = codebook_markdown(book)
    assert markdown.startswith(f"# Codebook: {answered.title}")
    for text in (
        "## `ratings.csv`",
        "## `block-answers.csv`",
        "| refusal_strategy |",
        "### `demographics`: About you",
        'options: "ChatGPT", "Claude", "Gemini", "Other; none of these"',
        "a number from 0 to 7",
        "at most 20 characters",
        "5 points (1 = Not at all; 5 = Completely)",
        "| attention_1 |",
    ):
        assert text in markdown, text


def test_codebook_downloads_carry_no_participant_data(answered, researchers):
    slug = answered.slug
    client = researchers("viewer")
    md = client.get(f"/studies/{slug}/results/codebook.md")
    js = client.get(f"/studies/{slug}/results/codebook.json")
    assert md.status_code == js.status_code == 200
    assert md["Content-Disposition"] == f'attachment; filename="{slug}-codebook.md"'
    assert json.loads(js.content) == build_codebook(answered)
    for body in (md.content.decode(), js.content.decode()):
        assert "PID-SECRET" not in body
        assert all(p.pseudonym[:16] not in body for p in Participant.objects.all())
    assert researchers("stranger").get(f"/studies/{slug}/results/codebook.md").status_code == 404
