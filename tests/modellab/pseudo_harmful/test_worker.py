"""Pseudo-harmful jobs on a real Celery worker process: the scripted loopback world through
every round to the verification task, and a tiny local transformers model as a target on the
gpu queue."""

from __future__ import annotations

import json

import pytest

from annotation.models import CodingTask
from modellab.models import PseudoHarmfulCandidate, PseudoHarmfulJob, PseudoHarmfulProbe
from modellab.pseudo_harmful import selectors, services
from studies.generation import services as generation_services
from tests.generation.chat_server import ChatServer
from tests.generation.tiny_model import build_tiny_chat_model
from tests.modellab.pseudo_harmful.conftest import (
    ROUND_1,
    ROUND_2,
    A,
    B,
    C,
    G,
    Models,
    World,
    is_generator,
    job_settings,
)
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


def run_to_the_end(job: PseudoHarmfulJob, worker: CeleryWorker, log) -> PseudoHarmfulJob:
    probes = PseudoHarmfulProbe.objects.filter(candidate__job=job)

    def moved() -> tuple:
        job.refresh_from_db()
        return (
            job.status,
            job.calls_used,
            probes.filter(status="done").count(),
            log.stat().st_size if log.exists() else 0,
        )

    wait_for_progress(
        lambda: selectors.job_progress(job)["finished"], progress=moved, worker=worker, log=log
    )
    job.refresh_from_db()
    return job


def test_the_whole_loop_on_a_real_worker(ada, tmp_path):
    purge_queues("default")
    log = tmp_path / "worker.log"
    with ChatServer(handler=World([ROUND_1, ROUND_2])) as server:
        models = Models(server, ada)
        worker = CeleryWorker("default", log_path=log).start()
        try:
            job = services.start_pseudo_harmful_job(owner=ada, **job_settings(models))
            job = run_to_the_end(job, worker, log)
        finally:
            worker.stop()
        generator_requests = [r for r in server.chat_requests if is_generator(r)]
    assert job.status == PseudoHarmfulJob.Status.VERIFYING, job.error
    # Round 2's request shows the two best of round 1, best first.
    second = generator_requests[1].body["messages"][0]["content"]
    shown = second.split("Examples of good prompts:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [json.loads(line)["prompt"] for line in shown] == [C, A]
    ranked = list(
        PseudoHarmfulCandidate.objects.filter(job=job, rank__isnull=False)
        .order_by("rank")
        .values_list("text", flat=True)[:4]
    )
    assert ranked == [C, G, A, B]
    assert set(
        PseudoHarmfulCandidate.objects.filter(job=job)
        .exclude(duplicate_reason="")
        .values_list("duplicate_reason", flat=True)
    ) == {"exact", "near"}
    # Every probe answered and labelled exactly once.
    probes = PseudoHarmfulProbe.objects.filter(candidate__job=job)
    assert probes.count() == 24
    assert set(probes.values_list("status", "attempts")) == {("done", 1)}
    assert job.calls_used == 26
    task = CodingTask.objects.get(pk=job.verification_task_id)
    assert list(task.items.order_by("position").values_list("prompt_text", flat=True)) == [C, A, B]
    dropped = PseudoHarmfulCandidate.objects.get(job=job, text=G)
    assert (dropped.kept, dropped.judge_label) == (False, "harmful")


def test_a_tiny_local_model_as_a_target(ada, tmp_path):
    purge_queues("default", "gpu")
    model_dir = build_tiny_chat_model(tmp_path / "tiny")
    tiny = generation_services.register_model(
        name="tiny-local",
        backend="transformers",
        backend_settings={"path": str(model_dir), "device": "cpu", "batch_size": 4},
        queue="gpu",
        temperature=0.0,
        max_tokens=8,
        actor=ada,
    )
    log = tmp_path / "worker.log"
    with ChatServer(handler=World([ROUND_1])) as server:
        models = Models(server, ada)
        worker = CeleryWorker("default,gpu", log_path=log).start()
        try:
            job = services.start_pseudo_harmful_job(
                owner=ada,
                **job_settings(models, targets=[tiny, models.cautious], rounds=1, samples=1),
            )
            job = run_to_the_end(job, worker, log)
        finally:
            worker.stop()
    assert job.status in (PseudoHarmfulJob.Status.VERIFYING, PseudoHarmfulJob.Status.DONE)
    tiny_probes = PseudoHarmfulProbe.objects.filter(candidate__job=job, model=tiny)
    assert tiny_probes.count() == 3  # A, B, C (D repeats A)
    assert set(tiny_probes.values_list("status", flat=True)) == {"done"}
    assert all(p.response and p.label for p in tiny_probes)
    # The tiny model's chat template marks show the prompt went through the transformers path.
    assert all(p.request["messages"][-1]["content"] in (A, B, C) for p in tiny_probes)
