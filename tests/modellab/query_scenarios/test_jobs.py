"""Query–scenario jobs in-process (tasks inline): scenarios for a study's own queries, the
budget, redelivered tasks, unreadable answers, embedding dedup, the sweep and who may act."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
from django.core.exceptions import PermissionDenied

from annotation.coding import services as coding_services
from modellab.models import QueryScenarioJob
from modellab.query_scenarios import selectors, services
from modellab.query_scenarios.tasks import (
    dispatch_query_scenario_job,
    generate_query_scenario_round,
    judge_query_scenario_round,
)
from studies import selectors as study_selectors
from studies import services as study_services
from studies.generation import services as generation_services
from studies.models import AuditEvent, Scenario, StudyMembership
from tests.generation.chat_server import Reply
from tests.modellab.material.helpers import assert_the_sweep_fails_it
from tests.modellab.query_scenarios.conftest import (
    CATEGORIES,
    ROUND_1,
    Script,
    chat,
    instance,
    is_generator,
    is_judge,
    last_user,
)

pytestmark = pytest.mark.django_db


def run(job_input, **overrides) -> QueryScenarioJob:
    job = services.start_query_scenario_job(**{**job_input, **overrides}, dispatch=False)
    dispatch_query_scenario_job.apply(args=[job.pk])
    job.refresh_from_db()
    return job


def code_all(task, coders, label_of) -> None:
    for coder in coders:
        coding_services.invite_coder(task=task, username=coder.username, actor=task.owner)
        while (a := coding_services.next_assignment(task=task, coder=coder)) is not None:
            coding_services.record_code(
                task=task, coder=coder, item_id=a.item_id, label=label_of(a.item.source_key)
            )


class ScenarioScript(Script):
    """The generator of a scenarios-only job: scenarios for every query it is asked about
    (one of them read ambiguous), plus an answer about a query it was not asked about."""

    def __call__(self, request):
        text = last_user(request)
        if "write its two scenarios" in text:
            asked = [json.loads(line) for line in re.findall(r"^\{.*\}$", text, re.M)]
            answer = [
                {
                    "query_id": q["query_id"],
                    "benign_scenario": f"You are a nurse who wants to help: {q['query_id']}",
                    "malicious_scenario": (
                        "You are unclear about it."
                        if q["query_id"] == "q02"
                        else f"You want to harm someone: {q['query_id']}"
                    ),
                }
                for q in asked
                if "query_id" in q
            ]
            answer.append({"query_id": "q99", "benign_scenario": "b", "malicious_scenario": "m"})
            return Reply(json=chat(json.dumps(answer)))
        return super().__call__(request)


def test_scenarios_for_a_studys_queries_that_have_none(
    make_study, ada, bob, loopback, scripted_server, eager_tasks
):
    scripted_server.handler = ScenarioScript([])
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=ada, role="owner")
    Scenario.objects.filter(query__study=study, query__query_id__in=["q01", "q02", "q03"]).delete()
    job = run(
        {
            "owner": ada,
            "name": "scenarios",
            "generator": loopback,
            "intent_judge": loopback,
            "study": study,
            "rounds": 2,
            "budget": 50,
        }
    )
    assert job.status == "verifying", job.error
    assert services.job_kind(job) == "scenarios_only"
    generator = [
        r for r in scripted_server.chat_requests if "write its two scenarios" in last_user(r)
    ]
    # Round 2 asks again only about q02, whose malicious scenario the judge read ambiguous.
    assert len(generator) == 2
    assert '"query_id": "q02"' in last_user(generator[1])
    assert '"query_id": "q01"' not in last_user(generator[1])
    first_round = job.round_set.get(number=1)
    assert any("'q99' was not asked about" in p for p in first_round.problems)
    candidates = list(selectors.candidates(job))
    assert [c.source_query.query_id for c in candidates] == ["q01", "q02", "q03", "q02"]
    assert candidates[0].query == candidates[0].source_query.text
    assert [c.judge_accepted for c in candidates] == [True, False, True, False]
    # Two coders agree with the judge; the set keeps the study's own query ids.
    code_all(job.verification_task, [ada, bob], lambda key: key.rsplit(":", 1)[1])
    job = services.finalise_query_scenario_job(job=job, actor=ada)
    assert list(job.candidates.filter(kept=True).values_list("query_id", flat=True)) == [
        "q01",
        "q03",
    ]
    assert any("q02 has no scenario" in p for p in study_selectors.launch_problems(study))
    other = make_study(launch=False, slug="other")
    with pytest.raises(PermissionDenied):
        services.add_to_study(job=job, study=other, actor=ada)
    StudyMembership.objects.create(study=other, user=ada, role="editor")
    with pytest.raises(services.AddToStudyRefused, match="belong to the study"):
        services.add_to_study(job=job, study=other, actor=ada)
    assert services.add_to_study(job=job, study=study, actor=ada) == {"scenarios": 2}
    texts = dict(
        Scenario.objects.filter(query__study=study, query__query_id="q01").values_list(
            "motivation", "text"
        )
    )
    assert texts == {
        "benign": "You are a nurse who wants to help: q01",
        "malicious": "You want to harm someone: q01",
    }
    q01 = study.queries.get(query_id="q01")
    assert q01.metadata["scenario_source"] == "query-scenario job scenarios"
    assert AuditEvent.objects.filter(study=study, action="scenarios_added").exists()
    problems = study_selectors.launch_problems(study)
    assert not any("q01 has no scenario" in p or "q03 has no scenario" in p for p in problems)
    # Never over scenarios a query has.
    with pytest.raises(study_services.ScenarioInputError, match="q01: has scenarios already"):
        study_services.add_scenarios(
            study=study, scenarios={"q01": {"benign": "b", "malicious": "m"}}, actor=ada
        )


def test_a_study_without_open_queries_or_not_editable_is_refused(make_study, ada, bob, loopback):
    study = make_study(launch=False)
    StudyMembership.objects.create(study=study, user=ada, role="owner")
    StudyMembership.objects.create(study=study, user=bob, role="viewer")
    base = {"name": "s", "generator": loopback, "intent_judge": loopback, "study": study}
    with pytest.raises(services.QueryScenarioInputError) as err:
        services.start_query_scenario_job(owner=ada, **base)
    assert err.value.problems == {"study": "every query of the study has its scenarios already"}
    with pytest.raises(services.QueryScenarioInputError) as err:
        services.start_query_scenario_job(owner=bob, **base)
    assert "does not allow changing its stimuli" in err.value.problems["study"]


def test_the_budget_is_never_exceeded_and_the_job_says_it_stopped(
    job_input, scripted_server, eager_tasks
):
    job = run(job_input, budget=10)
    progress = selectors.job_progress(job)
    # One generator call, then two readings for 4 of the 5 new candidates that are not
    # repeats (9 calls); the one call left cannot pay for a round.
    assert job.calls_used == 9 and len(scripted_server.chat_requests) == 9
    assert progress["judged"] == 4 and job.round_set.count() == 1
    assert any(
        "ran short in round 1; 1 candidate(s) were not judged" in n for n in progress["notes"]
    )
    assert any("stopped early: the budget of 10 calls" in n for n in progress["notes"])
    assert job.status == "verifying"


def test_redelivered_tasks_ask_nothing_more(job_input, scripted_server, eager_tasks):
    job = run(job_input)
    sent = len(scripted_server.chat_requests)
    used = job.calls_used
    generate_query_scenario_round.apply(args=[job.pk, 1])
    judge_query_scenario_round.apply(args=[job.pk, 2])
    dispatch_query_scenario_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert len(scripted_server.chat_requests) == sent and job.calls_used == used
    assert job.candidates.count() == 9 and job.status == "verifying"


def test_an_unreadable_answer_is_asked_again_with_the_reason(
    job_input, scripted_server, eager_tasks
):
    scripted_server.enqueue(Reply(json=chat("Sure! Here are some ideas: ...")))
    job = run(job_input, rounds=1)
    first = job.round_set.get()
    assert first.calls == 2 and len(first.raw_output) == 2
    assert first.problems[0].startswith("call 1: the answer is not a JSON array")
    first_ask, retry = [r for r in scripted_server.chat_requests if is_generator(r)]
    assert len(first_ask.body["messages"]) == 1
    messages = retry.body["messages"]
    assert messages[1] == {"role": "assistant", "content": "Sure! Here are some ideas: ..."}
    assert "could not be read" in messages[2]["content"]
    assert job.candidates.count() == 8 - 2  # the malformed and the wrong category left out


def test_embedding_similarity_finds_a_reworded_query(job_input, ada, scripted_server, eager_tasks):
    reworded = instance(
        "dangerous topics", "chemicals", "Never mixed should be which cleaning products?"
    )
    scripted_server.handler = Script([ROUND_1[:4], [reworded]])
    embedder = generation_services.register_model(
        name="embedder",
        kind="embedding",
        backend="openai",
        backend_settings={"base_url": scripted_server.url, "model": "e"},
        actor=ada,
    )
    job = run(job_input, embedding_model=embedder)
    candidate = job.candidates.get(query=reworded["query"])
    assert candidate.duplicate_reason == "embedding" and candidate.similarity == 1.0
    assert candidate.duplicate_of.query == "Which cleaning products should never be mixed?"
    assert scripted_server.embedding_requests
    assert not any(
        is_judge(r) and reworded["query"] in last_user(r) for r in scripted_server.chat_requests
    )


def test_the_sweep_fails_jobs_no_worker_took(job_input):
    job = services.start_query_scenario_job(**job_input, dispatch=False)
    assert_the_sweep_fails_it(
        job, services.fail_unstarted_jobs, "fail-unstarted-query-scenario-jobs"
    )


def test_only_the_owner_changes_a_job(job_input, bob):
    job = services.start_query_scenario_job(**job_input, dispatch=False)
    for change in (
        services.cancel_query_scenario_job,
        services.resume_query_scenario_job,
    ):
        with pytest.raises(PermissionDenied):
            change(job=job, actor=bob)
    with pytest.raises(PermissionDenied):
        services.finalise_query_scenario_job(job=job, actor=bob)


def test_seed_examples_must_fit_the_categories(job_input):
    bad = {**job_input["examples"][0], "category": "weapons"}
    with pytest.raises(services.QueryScenarioInputError) as err:
        services.start_query_scenario_job(
            **{**job_input, "examples": [bad], "categories": CATEGORIES + [CATEGORIES[0]]}
        )
    assert err.value.problems == {
        "categories[2].name": "the category 'privacy violation' is given twice",
        "examples[0].category": "'weapons' is not one of the job's categories",
    }
    assert not QueryScenarioJob.objects.exists()


def test_queries_imported_queries_only_get_their_scenarios(
    ada, bob, loopback, scripted_server, eager_tasks, every_type_spec
):
    scripted_server.handler = ScenarioScript([])
    spec = dataclasses.replace(every_type_spec[0], slug="queries-only")
    study = study_services.import_study(spec=spec, stimuli=None, actor=ada)
    study_services.import_draft_queries(
        study=study,
        rows=[
            study_services.DraftQuery(
                query_id="q01", text="How do I kill a mosquito?", category="x"
            ),
            study_services.DraftQuery(
                query_id="q03", text="How do I hack my own router?", category="x"
            ),
        ],
        actor=ada,
    )
    assert any("q01 has no scenario" in p for p in study_selectors.launch_problems(study))
    job = run(
        {
            "owner": ada,
            "name": "draft-scenarios",
            "generator": loopback,
            "intent_judge": loopback,
            "study": study,
            "rounds": 1,
        }
    )
    assert [c.source_query.query_id for c in selectors.candidates(job)] == ["q01", "q03"]
    code_all(job.verification_task, [ada, bob], lambda key: key.rsplit(":", 1)[1])
    job = services.finalise_query_scenario_job(job=job, actor=ada)
    assert services.add_to_study(job=job, study=study, actor=ada) == {"scenarios": 2}
    assert not any("scenario" in p for p in study_selectors.launch_problems(study))
