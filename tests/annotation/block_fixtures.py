"""Questionnaire blocks added to a launched study with the ORM (the spec's way in is separate)."""

from __future__ import annotations

from studies.models import Question, QuestionnaireBlock, Study

AGE_GROUPS = ["18–24", "25–34", "35–44", "45 or older"]
TOOLS = ["ChatGPT", "Claude", "Gemini", "Other; none of these"]


def add_blocks(study: Study) -> tuple[QuestionnaireBlock, QuestionnaireBlock]:
    """A "before" demographics block and an "after" final block with every question type."""
    before = QuestionnaireBlock.objects.create(
        study=study,
        key="demographics",
        title="About you",
        intro_md="A few questions **about you** first.<script>alert(1)</script>",
        placement="before",
        order=0,
    )
    after = QuestionnaireBlock.objects.create(
        study=study,
        key="final",
        title="Before you go",
        intro_md="",
        placement="after",
        order=1,
    )
    common = {"study": study}
    Question.objects.bulk_create(
        [
            Question(
                **common,
                block=before,
                key="age_group",
                kind="single_choice",
                text="What is your age group?",
                options=AGE_GROUPS,
                order=0,
            ),
            Question(
                **common,
                block=before,
                key="ai_tools",
                kind="multiple_choice",
                text="Which AI assistants have you used?",
                options=TOOLS,
                order=1,
            ),
            Question(
                **common,
                block=before,
                key="chatbot_days",
                kind="number",
                text="On how many days last week did you use an AI chatbot?",
                min_value=0,
                max_value=7,
                order=2,
            ),
            Question(
                **common,
                block=after,
                key="ai_trust",
                kind="likert",
                text="I trust AI assistants.",
                points=5,
                anchors={"1": "Not at all", "5": "Completely"},
                order=0,
            ),
            Question(
                **common,
                block=after,
                key="comment",
                kind="free_text",
                text="Anything else you want to tell us?",
                required=False,
                max_length=20,
                order=1,
            ),
        ]
    )
    return before, after


GOOD_BEFORE = {"age_group": "25–34", "ai_tools": ["Gemini", "ChatGPT"], "chatbot_days": "3"}
GOOD_AFTER = {"ai_trust": "4", "comment": ""}


def take_part(client, study: Study, pid: str, *, before: dict | None, after: dict | None):
    """A participant through the real pages: consent, the before block, every item, the after
    block (each block only if answers are given; the run stops at the first one not given)."""
    from tests.annotation.test_views import answer_page, start

    response = start(client, study, pid=pid)
    if before is None:
        return response
    response = client.post(response.request["PATH_INFO"], before, follow=True)
    while "/item/" in response.request["PATH_INFO"]:
        response, _ = answer_page(client, study, response)
    if after is None:
        return response
    return client.post(response.request["PATH_INFO"], after, follow=True)
