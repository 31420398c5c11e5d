"""Preview: a researcher takes the whole study as a participant and nothing is recorded."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.test import Client

from annotation.models import Slot
from studies import preview
from studies.models import AuditEvent, Question, QuestionnaireBlock, Study

pytestmark = pytest.mark.django_db

BANNER = "Preview — nothing is recorded"


def add_blocks(study: Study) -> None:
    """A demographics block before the items and a feedback block after them."""
    before = QuestionnaireBlock.objects.create(
        study=study, key="about_you", title="About you", placement="before", order=0
    )
    after = QuestionnaireBlock.objects.create(
        study=study, key="feedback", title="Your feedback", placement="after", order=1
    )
    rows = [
        (before, "age_group", "single_choice", {"options": ["18–29", "30–49", "50+"]}),
        (before, "years_online", "number", {"min_value": 0, "max_value": 80}),
        (after, "ai_tools", "multiple_choice", {"options": ["Chat", "Search", "None"]}),
        (after, "comment", "free_text", {"max_length": 200, "required": False}),
    ]
    for order, (block, key, kind, extra) in enumerate(rows, start=100):
        Question.objects.create(
            study=study,
            block=block,
            key=key,
            kind=kind,
            text=f"Question {key}",
            order=order,
            **extra,
        )


def row_counts() -> dict[str, int]:
    """Rows of every participant-side table, plus the audit log."""
    counts = {m.__name__: m.objects.count() for m in apps.get_app_config("annotation").get_models()}
    counts["AuditEvent"] = AuditEvent.objects.count()
    counts["claimed slots"] = Slot.objects.exclude(status="free").count()
    return counts


def block_answers(block: QuestionnaireBlock) -> dict:
    data = {}
    for q in block.questions.all():
        data[q.key] = {
            "single_choice": lambda q: q.options[0],
            "multiple_choice": lambda q: q.options[:2],
            "number": lambda q: "12",
            "free_text": lambda q: "Fine.",
            "likert": lambda q: "3",
        }[q.kind](q)
    return data


def walk(client: Client, study: Study, example: int = 1) -> list[str]:
    """Take the whole preview; returns the kinds of page seen, in order."""
    url = f"/studies/{study.slug}/preview/page/"
    start = client.post(f"/studies/{study.slug}/preview/", {"example": str(example)})
    assert start.status_code == 302 and start["Location"] == url
    seen = []
    for _ in range(200):
        html = client.get(url).content.decode()
        assert BANNER in html
        state = client.session[f"preview:{study.pk}"]
        page = preview.pages(study, preview.example_slot(study, state["example"]))[state["index"]]
        kind, _, name = page.partition(":")
        if kind == "done":
            assert "you have finished (preview)" in html and study.completion_code in html
            return [*seen, "done"]
        if kind == "item" and 'name="topic"' in html:
            seen.append("topic")
            topic = re.search(r'name="topic" value="(\d+)"', html).group(1)
            assert client.post(url, {"topic": topic}).status_code == 302
            continue
        seen.append(kind)
        if kind == "consent":
            data = {"decision": "agree"}
        elif kind == "block":
            data = block_answers(QuestionnaireBlock.objects.get(study=study, key=name))
        elif kind == "item":
            data = {n: "1" for n in set(re.findall(r'type="radio" name="([\w-]+)"', html))}
        else:
            data = {}
        response = client.post(url, data)
        assert response.status_code == 302, response.content.decode()[:2000]
    raise AssertionError("the preview never ended")


@pytest.mark.parametrize("launched", [False, True])
def test_preview_of_the_whole_study_writes_nothing(make_study, with_roles, client_for, launched):
    study = with_roles(make_study(launch=launched, target_participants=4))
    add_blocks(study)
    before = row_counts()
    editor = client_for("editor")
    intro = editor.get(f"/studies/{study.slug}/preview/").content.decode()
    assert "Nothing is recorded" in intro and "Participant 4: refusal_strategy=" in intro
    pages = walk(editor, study, example=2)
    slot = preview.example_slot(study, 1)
    checks = sum(1 for item in slot.items if item.kind == "attention")
    assert pages[:3] == ["consent", "instructions", "block"]
    assert pages[-2:] == ["block", "done"]
    assert pages.count("topic") == len(slot.items) - checks  # every item asked for a topic
    assert pages.count("item") == len(slot.items)
    assert row_counts() == before
    assert Study.objects.get(pk=study.pk).status == ("live" if launched else "draft")


def test_preview_shows_the_chosen_topic_with_its_scenario_and_response(
    make_study, with_roles, client_for
):
    study = with_roles(make_study(launch=False, target_participants=4))
    editor = client_for("editor")
    editor.post(f"/studies/{study.slug}/preview/")
    url = f"/studies/{study.slug}/preview/page/"
    editor.post(url, {"decision": "agree"})
    editor.post(url)
    html = editor.get(url).content.decode()
    slot = preview.example_slot(study, 0)
    first = slot.items[0]
    assert "Choose a topic" in html
    query = study.queries.filter(category=first.category).order_by("topic").first()
    editor.post(url, {"topic": str(query.pk)})
    html = editor.get(url).content.decode()
    assert query.text.split("\n")[0][:40] in html.replace("&#x27;", "'")
    scenario = query.scenarios.get(motivation=first.motivation).text
    assert scenario[:40] in html.replace("&#x27;", "'")
    # Answers are checked like the participant's: nothing chosen, an error, no progress.
    response = editor.post(url, {})
    assert response.status_code == 400 and "Please choose an answer" in response.content.decode()
    assert editor.session[f"preview:{study.pk}"]["index"] == 2


def test_preview_decline_and_changed_mind(make_study, with_roles, client_for):
    study = with_roles(make_study(launch=False, target_participants=2))
    editor = client_for("editor")
    editor.post(f"/studies/{study.slug}/preview/")
    url = f"/studies/{study.slug}/preview/page/"
    editor.post(url, {"decision": "decline"})
    assert "You chose not to take part" in editor.get(url).content.decode()
    editor.post(url, {"decision": "reconsider"})
    assert "I agree to take part" in editor.get(url).content.decode()


def test_preview_needs_the_edit_role(make_study, with_roles, client_for):
    study = with_roles(make_study(launch=False, target_participants=2))
    assert client_for("viewer").get(f"/studies/{study.slug}/preview/").status_code == 403
    assert client_for("viewer").post(f"/studies/{study.slug}/preview/page/").status_code == 403
    assert client_for("stranger").get(f"/studies/{study.slug}/preview/").status_code == 404


def test_a_study_that_cannot_be_planned_says_why(make_study, with_roles, client_for):
    study = with_roles(make_study(launch=False, target_participants=2))
    study.queries.all().delete()
    response = client_for("editor").get(f"/studies/{study.slug}/preview/")
    assert "cannot be previewed yet" in response.content.decode()
    assert "distinct queries were given" in response.content.decode()
