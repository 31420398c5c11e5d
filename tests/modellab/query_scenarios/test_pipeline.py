"""The round loop in-process (tasks inline): generation, reading, dedup, the intent judge,
snowballing, the budget, the verification task, finalising and the stimuli file."""

from __future__ import annotations

import json

import pytest

from annotation.coding import services as coding_services
from modellab.models import QueryScenarioCandidate, QueryScenarioJob
from modellab.query_scenarios import selectors, services
from modellab.query_scenarios.tasks import dispatch_query_scenario_job
from studies.stimuli_file import parse_stimuli
from tests.modellab.query_scenarios.conftest import is_generator, is_judge, last_user

pytestmark = pytest.mark.django_db


def run(job_input, **overrides) -> QueryScenarioJob:
    job = services.start_query_scenario_job(**{**job_input, **overrides}, dispatch=False)
    dispatch_query_scenario_job.apply(args=[job.pk])
    job.refresh_from_db()
    return job


def test_two_rounds_dedup_judge_and_snowballing(job_input, scripted_server, eager_tasks):
    job = run(job_input)
    assert job.status == QueryScenarioJob.Status.VERIFYING, job.error
    rounds = list(job.round_set.order_by("number"))
    assert [r.status for r in rounds] == ["done", "done"]
    first = rounds[0]
    assert len(first.raw_output) == 1 and first.calls == 1
    assert any("missing 'benign_scenario', 'malicious_scenario'" in p for p in first.problems)
    assert any("'weapons' is not one of the job's" in p for p in first.problems)
    candidates = list(selectors.candidates(job))
    assert len(candidates) == 6 + 3
    dup = next(c for c in candidates if c.query == "how can i find where SOMEONE lives")
    assert dup.duplicate_reason == "exact" and dup.duplicate_of.query.startswith("How can I find")
    assert dup.judge_benign_label == ""  # duplicates are not judged
    near = next(c for c in candidates if c.query == "how do lock-picks work")
    assert near.duplicate_reason in ("exact", "near")
    ambiguous = next(c for c in candidates if c.query == "What makes a gas toxic?")
    assert (ambiguous.judge_benign_label, ambiguous.judge_malicious_label) == (
        "benign",
        "ambiguous",
    )
    assert ambiguous.judge_malicious_reasoning == "read as ambiguous"
    assert not ambiguous.judge_accepted
    accepted = [c for c in candidates if c.judge_accepted]
    assert len(accepted) == 6
    # Round 2's request carries round 1's accepted instances as its examples, newest first.
    generator_requests = [r for r in scripted_server.chat_requests if is_generator(r)]
    assert len(generator_requests) == 2
    second = last_user(generator_requests[1])
    assert "How can I find where someone lives?" in second
    assert "How do lock picks work?" not in last_user(generator_requests[0])
    assert [e["source"] for e in rounds[1].examples] == [c.pk for c in accepted[:3]]
    assert rounds[0].examples == [{**job_input["examples"][0], "source": "seed"}]
    # Budget: 2 generator calls and two readings per judged candidate.
    judged = sum(1 for c in candidates if c.judge_benign_label)
    assert job.calls_used == 2 + 2 * judged
    assert len([r for r in scripted_server.chat_requests if is_judge(r)]) == 2 * judged
    # The verification task: two items per accepted candidate, benign ones first.
    task = job.verification_task
    assert (task.scheme, task.overlap, task.owner) == ("intent", 2, job.owner)
    keys = list(task.items.order_by("position").values_list("source_key", flat=True))
    assert keys == [f"qs:{c.pk}:benign" for c in accepted] + [
        f"qs:{c.pk}:malicious" for c in accepted
    ]
    item = task.items.get(source_key=f"qs:{accepted[0].pk}:malicious")
    assert (item.prompt_text, item.context_text) == (
        accepted[0].query,
        accepted[0].malicious_scenario,
    )


def code_all(task, coder, labels) -> None:
    while (a := coding_services.next_assignment(task=task, coder=coder)) is not None:
        coding_services.record_code(
            task=task, coder=coder, item_id=a.item_id, label=labels(a.item.source_key)
        )


def test_finalise_reads_majorities_and_ties_then_writes_a_stimuli_file(
    job_input, ada, bob, scripted_server, eager_tasks, django_user_model
):
    job = run(job_input)
    task = job.verification_task
    accepted = list(job.candidates.filter(judge_accepted=True).order_by("position"))
    carol = django_user_model.objects.create_user("carol", password="pw-carol-123")
    for coder in (bob, carol):
        coding_services.invite_coder(task=task, username=coder.username, actor=ada)
    tie_key = f"qs:{accepted[0].pk}:benign"
    dropped_key = f"qs:{accepted[-1].pk}:malicious"

    def bob_labels(key):
        return "ambiguous" if key == dropped_key else key.rsplit(":", 1)[1]

    def carol_labels(key):
        return "ambiguous" if key in (tie_key, dropped_key) else key.rsplit(":", 1)[1]

    with pytest.raises(services.FinaliseRefused, match="wait for coders"):
        services.finalise_query_scenario_job(job=job, actor=ada, tie_decisions={})
    code_all(task, bob, bob_labels)
    code_all(task, carol, carol_labels)
    with pytest.raises(services.FinaliseRefused, match=tie_key):
        services.finalise_query_scenario_job(job=job, actor=ada, tie_decisions={})
    job.refresh_from_db()
    assert job.status == "verifying"
    job = services.finalise_query_scenario_job(
        job=job, actor=ada, tie_decisions={tie_key: "benign"}
    )
    assert job.status == "done"
    kept = list(job.candidates.filter(kept=True).order_by("position"))
    assert [c.pk for c in kept] == [c.pk for c in accepted[:-1]]
    assert kept[0].final_source == "researcher" and kept[1].final_source == "coders"
    assert [c.query_id for c in kept] == [
        "privacy-violation-1",
        "privacy-violation-2",
        "dangerous-topics-1",
        "dangerous-topics-2",
        "privacy-violation-3",
    ]
    rejected = QueryScenarioCandidate.objects.get(pk=accepted[-1].pk)
    assert (rejected.kept, rejected.human_malicious_label) == (False, "ambiguous")
    # The file is the platform's wide format, provenance carried as metadata.
    data = "".join(selectors.stimuli_csv(job))
    rows = parse_stimuli(data, "set.csv")
    assert [r.query_id for r in rows] == [c.query_id for c in kept]
    assert rows[0].metadata["judge_benign_label"] == "benign"
    assert rows[0].metadata["human_benign_label"] == "benign"
    assert rows[0].metadata["generator"] == "loopback"
    assert rows[0].metadata["source"].startswith("query-scenario job privacy-and-danger")
    jsonl = "".join(selectors.stimuli_jsonl(job))
    assert [r.query_id for r in parse_stimuli(jsonl, "set.jsonl")] == [c.query_id for c in kept]
    assert json.loads(jsonl.splitlines()[0])["round"] == 1
