"""Classification runs on real Celery worker processes: string matching on the default queue,
an LLM judge's batches on the judge model's own queue, every label stored once."""

from __future__ import annotations

import json

import pytest

from config.celery import app
from modellab.behaviour import selectors, services
from modellab.models import ClassificationLabel, ClassificationRun
from tests.modellab.behaviour.conftest import EXPECTED_LABEL, register
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


def test_runs_finish_on_real_workers_with_judge_batches_on_the_judge_queue(
    natural_study, chat_server, scripted, tmp_path
):
    study, (alpha, beta) = natural_study
    # The natural responses were written inline; from here on tasks go through the broker.
    app.conf.CELERY_TASK_ALWAYS_EAGER = False
    purge_queues("default", "gpu")
    scripted.judge = lambda body: json.dumps({"label": "full_refusal", "rationale": "scripted"})
    judge = register("gpu-judge", chat_server.url, queue="gpu")
    log = tmp_path / "worker.log"

    def moved() -> tuple[int, int]:
        done = ClassificationLabel.objects.filter(status="done").count()
        return done, log.stat().st_size if log.exists() else 0

    default_worker = CeleryWorker("default", log_path=log).start()
    gpu_worker = None
    try:
        matched = services.start_classification_run(
            study=study,
            models=[alpha, beta],
            classifier="string_match",
            scheme="three_way",
            actor=None,
        )
        wait_for_progress(
            lambda: selectors.run_progress(matched)["finished"],
            progress=moved,
            worker=default_worker,
            log=log,
        )
        judged = services.start_classification_run(
            study=study,
            models=[alpha],
            classifier="llm_judge",
            scheme="three_way",
            judge_model=judge,
            actor=None,
        )
        # The default worker plans the batches; nobody takes them until a gpu worker runs.
        planned = ClassificationLabel.objects.filter(run=judged).exclude(batch=None)
        wait_for_progress(
            lambda: planned.count() == 48, progress=moved, worker=default_worker, log=log
        )
        assert not ClassificationLabel.objects.filter(run=judged, status="done").exists()
        gpu_worker = CeleryWorker("gpu", log_path=log).start()
        wait_for_progress(
            lambda: selectors.run_progress(judged)["finished"],
            progress=moved,
            worker=gpu_worker,
            log=log,
        )
    finally:
        default_worker.stop()
        if gpu_worker is not None:
            gpu_worker.stop()

    matched.refresh_from_db()
    assert matched.status == ClassificationRun.Status.DONE, matched.error
    assert matched.n_labelled == 96
    for row in matched.labels.select_related("item"):
        assert row.label == EXPECTED_LABEL[row.item.text] and row.attempts == 1
    judged.refresh_from_db()
    assert judged.status == ClassificationRun.Status.DONE, judged.error
    assert set(judged.labels.values_list("label", flat=True)) == {"full_refusal"}
    judge_calls = [r for r in chat_server.chat_requests if r.body["model"] == "gpu-judge-served"]
    assert len(judge_calls) == 48
