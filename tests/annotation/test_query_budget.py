"""The participant path's SQL budget: at most 5 queries for a page and 6 for a submit, counted
for every page kind on a live study (deterministic, unlike time).

The study's fixed parts are read once per process and study version (annotation.material), so
the budget is counted with them loaded, as on a server that has served the study before; the
participant's own slot items are read on their first page and counted there. Savepoints of the
test's own transaction are not queries a server would run, and are not counted.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from annotation.material import study_material
from annotation.models import Participant, Rating
from tests.annotation.block_fixtures import GOOD_AFTER, GOOD_BEFORE, add_blocks
from tests.annotation.test_views import form_fields

pytestmark = pytest.mark.django_db

PAGE_BUDGET = 5
SUBMIT_BUDGET = 6
_SAVEPOINT = re.compile(r"^\s*(SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b", re.I)


class Walk:
    """One participant through the pages, every request's queries counted by page kind."""

    def __init__(self, study):
        self.study = study
        self.client = Client()
        self.counts: list[tuple[str, str, int]] = []

    def request(self, kind: str, method: str, url: str, data: dict | None = None):
        with CaptureQueriesContext(connection) as captured:
            response = getattr(self.client, method)(url, data or {})
        queries = [q["sql"] for q in captured.captured_queries if not _SAVEPOINT.match(q["sql"])]
        self.counts.append((kind, method, len(queries)))
        return response

    def get(self, kind: str, url: str):
        response = self.request(kind, "get", url)
        assert response.status_code == 200, (kind, url, response.status_code)
        return response

    def post(self, kind: str, url: str, data: dict) -> str:
        response = self.request(kind, "post", url, data)
        assert response.status_code in (302, 303), (kind, url, response.status_code)
        return response["Location"]

    def over_budget(self) -> list[tuple[str, str, int]]:
        return [
            (kind, method, n)
            for kind, method, n in self.counts
            if n > (SUBMIT_BUDGET if method == "post" else PAGE_BUDGET)
        ]

    def kinds(self) -> set[str]:
        return {kind for kind, _method, _n in self.counts}


def walk_through(study, pid: str) -> Walk:
    walk = Walk(study)
    entry = f"/s/{study.slug}/?PROLIFIC_PID={pid}&STUDY_ID=s&SESSION_ID=x"
    response = walk.request("entry", "get", entry)
    assert response.status_code == 302
    url = response["Location"]
    walk.get("consent", url)
    url = walk.post("consent", url, {"decision": "agree"})
    walk.get("instructions", url)
    url = walk.post("instructions", url, {})
    while not url.endswith("/done/"):
        html = walk.get("page", url).content.decode()
        if "/block/" in url:
            kind = "block"
            answers = GOOD_BEFORE if "demographics" in url else GOOD_AFTER
        elif 'name="topic"' in html:
            kind = "topic"
            answers = {"topic": re.search(r'name="topic" value="(\d+)"', html).group(1)}
        else:
            kind = "attention" if "Answer the question below" in html else "item"
            names = sorted(set(re.findall(r'type="radio" name="([\w-]+)"', html)))
            answers = {**form_fields(html), **{name: "4" for name in names}}
        walk.counts[-1] = (kind, "get", walk.counts[-1][2])
        url = walk.post(kind, url, answers)
    walk.get("done", url)
    return walk


def test_every_page_and_submit_of_the_seed_design_stays_within_budget(make_study):
    study = make_study(target_participants=4)
    study_material(study)
    walk = walk_through(study, "budget-1")
    assert {"entry", "consent", "instructions", "topic", "item", "attention", "done"} <= (
        walk.kinds()
    )
    assert walk.over_budget() == [], walk.counts
    participant = Participant.objects.get(study=study)
    assert participant.status == "completed"
    # The budget is not bought by skipping work: every answer is stored, once.
    assert Rating.objects.filter(participant=participant).count() == 8 * 10 + 2


def test_questionnaire_blocks_and_the_last_submit_stay_within_budget(make_study):
    study = make_study(target_participants=2)
    add_blocks(study)
    study_material(study)
    walk = walk_through(study, "budget-2")
    assert "block" in walk.kinds()
    assert walk.over_budget() == [], walk.counts
    assert Participant.objects.get(study=study).status == "completed"


def test_the_budget_holds_for_a_later_participant_and_a_returning_browser(make_study):
    study = make_study(target_participants=4)
    study_material(study)
    walk_through(study, "first")
    second = walk_through(study, "second")
    assert second.over_budget() == [], second.counts
    # Reopening the finished link: the study row, the participant, the redirect to "done".
    again = second.request("entry", "get", f"/s/{study.slug}/?PROLIFIC_PID=second")
    assert again.status_code == 302 and again["Location"].endswith("/done/")
    assert second.counts[-1][2] <= PAGE_BUDGET
