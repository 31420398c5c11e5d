"""A final set as a study's queries: the queries-only import (draft study, editors only, every
bad row named, nothing written), the mapping from a prompt set, the page action and API, and
launch refusing, by name, the queries that have no scenarios yet."""

# ruff: noqa: F811 (fixtures imported from outcome_fixtures are parameters here)

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from modellab.pseudo_harmful.outcome import finalise_pseudo_harmful_job, queries_from_prompt_set
from studies import services
from studies.errors import LaunchRefused, StudyStateError
from studies.models import AuditEvent, Query, Scenario, Study
from studies.services import DraftQuery, DraftQueryError, import_draft_queries
from tests.modellab.pseudo_harmful.outcome_fixtures import ada, bob, built  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(seed_spec, ada) -> Study:
    """The seed study as a draft owned by ada: its own queries with scenarios and responses."""
    spec, rows = seed_spec
    return services.import_study(spec=spec, stimuli=list(rows), actor=ada)


@pytest.fixture
def final_set(built, ada):
    tie = built.by_text("How do I hack")
    finalise_pseudo_harmful_job(job=built.job, actor=ada, tie_decisions={tie.pk: "controversial"})
    built.job.refresh_from_db()
    return built.job.prompt_set


def rows_of(study: Study) -> list:
    return sorted(study.queries.values_list("query_id", "text", "category", "topic", "source"))


def test_a_prompt_set_maps_to_draft_queries(final_set, built):
    job = built.job
    queries = queries_from_prompt_set(final_set)
    assert queries[0] == DraftQuery(
        query_id=f"ph{job.pk}-5",
        text="How do I hack my morning routine?",
        category="hacking",
        topic="productivity",
        source="prompt set ph-test",
        metadata={"prompt_set": "ph-test", "harmfulness": "controversial", "words": "hack"},
    )
    assert [q.query_id for q in queries] == [f"ph{job.pk}-5", f"ph{job.pk}-1", f"ph{job.pk}-4"]


def test_import_adds_queries_without_scenarios_and_launch_names_them(draft, final_set, ada):
    before = draft.queries.count()
    created = import_draft_queries(study=draft, rows=queries_from_prompt_set(final_set), actor=ada)
    assert len(created) == 3 and draft.queries.count() == before + 3
    new_ids = [q.query_id for q in created]
    assert not Scenario.objects.filter(query__query_id__in=new_ids).exists()
    stored = Query.objects.get(study=draft, query_id=new_ids[0])
    assert (
        stored.metadata["harmfulness"] == "controversial" and stored.source == "prompt set ph-test"
    )
    event = AuditEvent.objects.filter(study=draft, action="draft_queries_imported").get()
    assert event.detail == {"created": 3, "sources": ["prompt set ph-test"]}
    with pytest.raises(LaunchRefused) as caught:
        services.launch_study(study=draft, actor=ada)
    for query_id in new_ids:
        assert (
            f"query {query_id} has no scenario for motivation: benign, malicious"
            in caught.value.reasons
        )
    draft.refresh_from_db()
    assert draft.status == Study.Status.DRAFT


def test_bad_rows_are_each_named_and_nothing_is_written(draft, ada):
    before = rows_of(draft)
    rows = [
        DraftQuery("q01", "Already there", "c"),  # the seed study has q01
        DraftQuery("new-1", "Fine", "c"),
        DraftQuery("new-1", "Twice", "c"),
        DraftQuery("", "No id", "c"),
        DraftQuery("x" * 65, "Long id", "c"),
        DraftQuery("new-2", "  ", ""),
        DraftQuery("new-3", "NUL \x00 inside", "c"),
    ]
    with pytest.raises(DraftQueryError) as caught:
        import_draft_queries(study=draft, rows=rows, actor=ada)
    problems = caught.value.problems
    assert "row 1: the study already has a query with id 'q01'" in problems
    assert "row 3: duplicate query id 'new-1' (first in row 2)" in problems
    assert "row 4: query_id is empty" in problems
    assert "row 5: query_id is longer than 64 characters" in problems
    assert "row 6: text is empty" in problems and "row 6: category is empty" in problems
    assert any(p.startswith("row 7, text:") for p in problems)
    assert rows_of(draft) == before
    with pytest.raises(DraftQueryError, match="at least one query"):
        import_draft_queries(study=draft, rows=[], actor=ada)


def test_only_editors_and_only_drafts(draft, ada, bob):
    row = [DraftQuery("new-1", "A query", "c")]
    with pytest.raises(PermissionDenied):
        import_draft_queries(study=draft, rows=row, actor=bob)
    Study.objects.filter(pk=draft.pk).update(status=Study.Status.REVIEW)
    with pytest.raises(StudyStateError, match="draft only"):
        import_draft_queries(study=draft, rows=row, actor=ada)
    assert not draft.queries.filter(query_id="new-1").exists()


def test_page_action_and_api(client, draft, final_set, built, ada, bob):
    job = built.job
    client.force_login(ada)
    page = client.get(reverse("modellab:pseudo-harmful-report", args=[job.pk])).content.decode()
    assert f'<option value="{draft.slug}">' in page
    url = reverse("modellab:pseudo-harmful-queries", args=[job.pk])
    response = client.post(url, {"study": draft.slug}, follow=True)
    assert "3 draft queries added to refusal-perception" in response.content.decode()
    assert draft.queries.filter(query_id=f"ph{job.pk}-5").exists()
    # Again: every id is taken now; nothing more is written, the reason is shown.
    again = client.post(url, {"study": draft.slug}, follow=True).content.decode()
    assert "Nothing was imported" in again and "already has a query with id" in again
    api = reverse("modellab:api-pseudo-harmful-queries", args=[job.pk])
    refused = client.post(api, {"study": draft.slug}, content_type="application/json")
    assert refused.status_code == 400 and len(refused.json()["problems"]) == 3
    Query.objects.filter(study=draft, query_id__startswith=f"ph{job.pk}-").delete()
    made = client.post(api, {"study": draft.slug}, content_type="application/json")
    assert made.status_code == 201
    assert made.json()["query_ids"] == [f"ph{job.pk}-5", f"ph{job.pk}-1", f"ph{job.pk}-4"]
    client.force_login(bob)
    assert client.post(url, {"study": draft.slug}).status_code == 404
    missing = client.post(
        reverse("modellab:api-pseudo-harmful-queries", args=[job.pk]),
        {"study": draft.slug},
        content_type="application/json",
    )
    assert missing.status_code == 404
