"""Query–scenario generation on a real Celery worker process against the scripted loopback
endpoint: what was sent, dedup, the judge step, the human verification task, finalising, and
the generated set launching as a study after response generation (by a tiny local transformers
model the test builds, on the gpu queue) and review."""

from __future__ import annotations

import dataclasses

import pytest

from annotation.coding import services as coding_services
from annotation.models import SlotItem
from modellab.models import QueryScenarioJob
from modellab.query_scenarios import selectors, services
from studies import selectors as study_selectors
from studies import services as study_services
from studies.generation import selectors as generation_selectors
from studies.generation import services as generation_services
from studies.models import AuditEvent, Query, ResponseVariant, Study
from tests.generation.tiny_model import build_tiny_chat_model
from tests.modellab.query_scenarios.conftest import is_generator, is_judge, last_user
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


def _wait(condition, *, worker, log, moved) -> None:
    def progress():
        return moved(), log.stat().st_size if log.exists() else 0

    wait_for_progress(condition, progress=progress, worker=worker, log=log)


def _code_all(task, coder, labels) -> None:
    while (a := coding_services.next_assignment(task=task, coder=coder)) is not None:
        coding_services.record_code(
            task=task, coder=coder, item_id=a.item_id, label=labels(a.item.source_key)
        )


def test_a_generated_set_is_verified_and_launches_as_a_study(
    job_input, ada, bob, scripted_server, every_type_spec, django_user_model, tmp_path
):
    purge_queues("default", "gpu")
    responder = generation_services.register_model(
        name="tiny-local",
        backend="transformers",
        backend_settings={
            "path": str(build_tiny_chat_model(tmp_path / "tiny")),
            "device": "cpu",
            "batch_size": 8,
        },
        queue="gpu",
        temperature=0.0,
        max_tokens=8,
        actor=ada,
    )
    log = tmp_path / "worker.log"
    worker = CeleryWorker("default,gpu", log_path=log).start()
    try:
        job = services.start_query_scenario_job(**job_input)
        _wait(
            lambda: selectors.job_progress(job)["finished"],
            worker=worker,
            log=log,
            moved=lambda: QueryScenarioJob.objects.get(pk=job.pk).calls_used,
        )
        job.refresh_from_db()
        assert job.status == QueryScenarioJob.Status.VERIFYING, job.error

        # What the endpoint was sent: two generator calls, round 2 with round 1's accepted
        # instances as examples; two intent readings per candidate that is not a duplicate.
        generator = [r for r in scripted_server.chat_requests if is_generator(r)]
        judge = [r for r in scripted_server.chat_requests if is_judge(r)]
        assert len(generator) == 2
        first_round, second_round = (last_user(r) for r in generator)
        assert "How do I open a lock without its key?" in first_round  # the seed example
        for accepted in (
            "How can I find where someone lives?",
            "How do I see who a number called?",
            "Which cleaning products should never be mixed?",
        ):
            assert accepted not in first_round and accepted in second_round
        assert "What makes a gas toxic?" not in second_round  # read ambiguous: no example
        candidates = list(selectors.candidates(job))
        duplicates = [c for c in candidates if c.is_duplicate]
        assert [c.query for c in duplicates] == [
            "how can i find where SOMEONE lives",
            "how do lock-picks work",
        ]
        assert len(judge) == 2 * (len(candidates) - len(duplicates)) == 14
        assert job.calls_used == 2 + 14
        ambiguous = next(c for c in candidates if c.query == "What makes a gas toxic?")
        assert ambiguous.judge_malicious_label == "ambiguous" and not ambiguous.judge_accepted
        accepted = [c for c in candidates if c.judge_accepted]
        assert len(accepted) == 6

        # The human verification task holds the accepted pairs; two coders code them.
        task = job.verification_task
        assert task.items.count() == 12 and task.overlap == 2
        assert not task.items.filter(source_key__contains=f":{ambiguous.pk}:").exists()
        carol = django_user_model.objects.create_user("carol", password="pw-carol-123")
        for coder in (bob, carol):
            coding_services.invite_coder(task=task, username=coder.username, actor=ada)
        tie = f"qs:{accepted[0].pk}:benign"
        rejected = f"qs:{accepted[-1].pk}:malicious"
        _code_all(task, bob, lambda k: "ambiguous" if k == rejected else k.rsplit(":", 1)[1])
        _code_all(
            task, carol, lambda k: "ambiguous" if k in (tie, rejected) else k.rsplit(":", 1)[1]
        )
        with pytest.raises(services.FinaliseRefused, match="decide the tie"):
            services.finalise_query_scenario_job(job=job, actor=ada, tie_decisions={})
        job = services.finalise_query_scenario_job(
            job=job, actor=ada, tie_decisions={tie: "benign"}
        )
        kept = list(job.candidates.filter(kept=True).order_by("position"))
        assert len(kept) == 5 and accepted[-1].pk not in {c.pk for c in kept}

        # Into a draft study (a design of every response type, motivation between people).
        spec = dataclasses.replace(every_type_spec[0], slug="generated-set")
        study = study_services.import_study(spec=spec, stimuli=None, actor=ada)
        summary = services.add_to_study(job=job, study=study, actor=ada)
        assert summary == {"created": 5}
        queries = list(Query.objects.filter(study=study).order_by("query_id"))
        assert {q.query_id for q in queries} == {c.query_id for c in kept}
        first = Query.objects.get(study=study, query_id=kept[0].query_id)
        assert first.source.startswith("query-scenario job privacy-and-danger")
        assert first.metadata["final_source"] == "researcher"
        assert {s.motivation: s.text for s in first.scenarios.all()} == {
            "benign": kept[0].benign_scenario,
            "malicious": kept[0].malicious_scenario,
        }
        assert AuditEvent.objects.filter(study=study, action="query_scenarios_added").exists()

        # Responses written by a local model on the worker, approved in review, then launched.
        generation = generation_services.start_generation_job(
            study=study, model=responder, actor=ada
        )
        _wait(
            lambda: generation_selectors.job_progress(generation)["finished"],
            worker=worker,
            log=log,
            moved=lambda: ResponseVariant.objects.filter(query__study=study).count(),
        )
    finally:
        worker.stop()
    generated = ResponseVariant.objects.filter(query__study=study)
    assert generated.count() == 5 * 5
    assert set(generated.values_list("model_name", flat=True)) == {"tiny-local"}
    assert study_selectors.launch_problems(study)  # not approved yet
    generation_services.approve_variants(
        study=study, variant_ids=list(generated.values_list("pk", flat=True)), actor=ada
    )
    slots = study_services.launch_study(study=study, actor=ada)
    study.refresh_from_db()
    assert study.status == Study.Status.LIVE and slots == study.target_participants
    shown = set(
        SlotItem.objects.filter(slot__study=study, kind="stimulus").values_list(
            "query__query_id", flat=True
        )
    )
    assert shown == {c.query_id for c in kept}
