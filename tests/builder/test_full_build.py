"""A whole study built through the builder's pages only, and questionnaire blocks."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from studies import selectors
from studies.models import Question, QuestionnaireBlock, Study
from studies.spec import load_spec, spec_dict
from tests.builder.conftest import errors_of, form_data

pytestmark = pytest.mark.django_db


def press(client: Client, url: str, changes: dict, button: str = "save", page: str | None = None):
    """Fill in the form of ``page`` (or of a fresh GET) like a user, and press ``button``."""
    data = form_data(page if page is not None else client.get(url).content.decode())
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)  # an unticked checkbox
        else:
            data[name] = value
    data[button] = ""
    return client.post(url, data)


def ok(response) -> None:
    assert response.status_code == 302, response.content.decode()[-4000:]


AGREE5 = "1: Strongly disagree\n3: Neutral\n5: Strongly agree"
DEMOGRAPHICS = {
    "key": "demographics",
    "title": "About you",
    "intro": "A few questions about **you**.",
    "placement": "before",
    "bq-0-key": "age_group",
    "bq-0-type": "single_choice",
    "bq-0-text": "What is your age group?",
    "bq-0-options": "18–24\n25–34\n35–44\n45 or older",
    "bq-1-key": "comment",
    "bq-1-type": "free_text",
    "bq-1-text": "Anything else you want to tell us?",
    "bq-1-required": None,
    "bq-1-max_length": "500",
}


def test_a_study_built_entirely_in_the_browser_exports_a_spec_that_loads_back_equal(clients, users):
    client = clients["owner"]
    ok(
        client.post(
            "/studies/new/",
            {
                "source": "form",
                "start-title": "Built here",
                "start-slug": "built-here",
                "start-design": "every_type",
            },
        )
    )
    base = "/studies/built-here/design"

    # Two within factors (motivation × alignment) and a three-row rule; 4 items fit them.
    url = f"{base}/design/"
    factors = {
        "factor-0-name": "alignment",
        "factor-0-levels": "aligned\nmisaligned",
        "factor-0-assignment": "within",
        "factor-1-assignment": "within",
        "items_per_participant": "4",
    }
    response = press(client, url, factors, button="refresh")
    assert response.status_code == 200
    response = press(client, url, {}, button="add_rule", page=response.content.decode())
    rule = {
        "rule-0-when_0": "aligned",
        "rule-0-when_1": "benign",
        "rule-0-show": "full_compliance",
        "rule-1-when_0": "aligned",
        "rule-1-when_1": "malicious",
        "rule-1-show": "direct_refusal",
        "rule-2-when_0": "misaligned",
        "rule-2-show": "partial_compliance",
    }
    ok(press(client, url, rule, page=response.content.decode()))

    # Three Likert questions: the starting one edited, two added.
    url = f"{base}/questions/"
    response = press(client, url, {}, button="add_question")
    questions = {
        "question-0-anchors": AGREE5,
        "question-0-points": "5",
        "question-1-key": "appropriateness",
        "question-1-construct": "ethical_judgment",
        "question-1-text": "The response was appropriate.",
        "question-1-points": "5",
        "question-1-anchors": AGREE5,
        "question-2-key": "frustration",
        "question-2-construct": "affect",
        "question-2-text": "This response frustrated me.",
        "question-2-points": "5",
        "question-2-anchors": AGREE5,
        "question-2-reverse_coded": "on",
    }
    ok(press(client, url, questions, page=response.content.decode()))

    # One attention check.
    ok(
        press(
            client,
            f"{base}/attention/",
            {
                "check-0-key": "attention_1",
                "check-0-text": "Please select 'Strongly disagree'.",
                "check-0-points": "5",
                "check-0-anchors": AGREE5,
                "check-0-correct": "1",
                "check-0-after_item": "2",
            },
        )
    )

    # A demographics block with a single-choice and a free-text question.
    ok(press(client, f"{base}/blocks/new-block/", DEMOGRAPHICS))

    study = Study.objects.get(slug="built-here")
    response = client.get("/studies/built-here/spec.yaml")
    exported = load_spec(response.content.decode())
    assert spec_dict(exported) == spec_dict(selectors.study_spec(study))
    spec = spec_dict(exported)
    assert [(f["name"], f["levels"], f["assignment"]) for f in spec["factors"]] == [
        ("alignment", ["aligned", "misaligned"], "within"),
        ("motivation", ["benign", "malicious"], "within"),
    ]
    assert spec["response_rule"] == [
        {"when": {"alignment": "aligned", "motivation": "benign"}, "show": "full_compliance"},
        {"when": {"alignment": "aligned", "motivation": "malicious"}, "show": "direct_refusal"},
        {"when": {"alignment": "misaligned"}, "show": "partial_compliance"},
    ]
    assert [q["key"] for q in spec["questions"]] == [
        "helpfulness",
        "appropriateness",
        "frustration",
    ]
    assert spec["questions"][2]["reverse_coded"] is True
    assert spec["questions"][0]["scale"] == {
        "points": 5,
        "anchors": {1: "Strongly disagree", 3: "Neutral", 5: "Strongly agree"},
    }
    assert spec["attention_checks"][0]["correct"] == 1
    assert spec["blocks"] == [
        {
            "key": "demographics",
            "title": "About you",
            "intro": "A few questions about **you**.",
            "placement": "before",
            "questions": [
                {
                    "key": "age_group",
                    "type": "single_choice",
                    "text": "What is your age group?",
                    "required": True,
                    "options": ["18–24", "25–34", "35–44", "45 or older"],
                },
                {
                    "key": "comment",
                    "type": "free_text",
                    "text": "Anything else you want to tell us?",
                    "required": False,
                    "max_length": 500,
                },
            ],
        }
    ]
    block = QuestionnaireBlock.objects.get(study=study)
    assert list(block.questions.order_by("order").values_list("key", "kind")) == [
        ("age_group", Question.Kind.SINGLE_CHOICE),
        ("comment", Question.Kind.FREE_TEXT),
    ]
    # Uploading the exported file as a new study gives the same design.
    upload = client.post(
        "/studies/new/",
        {
            "source": "upload",
            "upload-spec_file": SimpleUploadedFile("built.yaml", response.content),
            "upload-slug": "built-again",
        },
    )
    ok(upload)
    again = spec_dict(selectors.study_spec(Study.objects.get(slug="built-again")))
    assert again == {**spec, "slug": "built-again"}


def test_block_question_problems_appear_next_to_their_fields(clients, new_study):
    study = new_study()
    url = f"/studies/{study.slug}/design/blocks/new-block/"
    response = press(
        clients["owner"],
        url,
        {
            **DEMOGRAPHICS,
            "bq-0-options": "only one",
            "bq-1-options": "not\nfor free text",
            "bq-1-key": "helpfulness",  # used by an item question already
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "at least 2" in errors_of(page, "bq-0-options")
    assert "options is only for" in errors_of(page, "bq-1-options")
    assert "already used" in errors_of(page, "bq-1-key")
    assert QuestionnaireBlock.objects.filter(study=study).count() == 0


def test_blocks_are_edited_moved_and_deleted(clients, new_study):
    study = new_study()
    client = clients["owner"]
    ok(press(client, f"/studies/{study.slug}/design/blocks/new-block/", DEMOGRAPHICS))
    ok(
        press(
            client,
            f"/studies/{study.slug}/design/blocks/new-block/",
            {
                "key": "final",
                "title": "One last thing",
                "placement": "after",
                "bq-0-key": "chatbot_days",
                "bq-0-type": "number",
                "bq-0-text": "On how many days last week did you use an AI chatbot?",
                "bq-0-min": "0",
                "bq-0-max": "7",
            },
        )
    )
    # Edit the first block: rename its title; its questions stay.
    ok(press(client, f"/studies/{study.slug}/design/blocks/demographics/", {"title": "You"}))
    action = f"/studies/{study.slug}/design/blocks/final/action/"
    ok(client.post(action, {"action": "up"}))
    study.refresh_from_db()
    blocks = spec_dict(selectors.study_spec(study))["blocks"]
    assert [(b["key"], b["title"]) for b in blocks] == [
        ("final", "One last thing"),
        ("demographics", "You"),
    ]
    assert blocks[0]["questions"][0] | {} == {
        "key": "chatbot_days",
        "type": "number",
        "text": "On how many days last week did you use an AI chatbot?",
        "required": True,
        "min": 0,
        "max": 7,
    }
    assert len(blocks[1]["questions"]) == 2
    ok(client.post(action, {"action": "delete"}))
    assert list(QuestionnaireBlock.objects.filter(study=study).values_list("key", flat=True)) == [
        "demographics"
    ]
    assert clients["viewer"].post(action, {"action": "delete"}).status_code == 403
