"""A false-refusal run on a real Celery worker process: a tiny local transformers model on the
gpu queue and a loopback endpoint on the default queue answer the PHTest sample; every answer
lands in PostgreSQL once, labelled."""

from __future__ import annotations

import pytest

from modellab.false_refusal import selectors, services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING
from modellab.models import FalseRefusalItem, FalseRefusalRun
from studies.generation import services as generation_services
from tests.generation.chat_server import ChatServer
from tests.generation.tiny_model import build_tiny_chat_model
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


def test_run_on_a_real_worker_labels_every_answer_once(ada, phtest_sample, tmp_path):
    purge_queues("default", "gpu")
    model_dir = build_tiny_chat_model(tmp_path / "tiny")
    tiny = generation_services.register_model(
        name="tiny-local",
        backend="transformers",
        backend_settings={"path": str(model_dir), "device": "cpu", "batch_size": 4},
        queue="gpu",
        temperature=0.0,
        max_tokens=16,
        actor=ada,
    )
    prompt_set = services.import_prompt_set(
        name="phtest-sample",
        data=phtest_sample,
        filename="s.csv",
        mapping=PHTEST_MAPPING,
        actor=ada,
    )
    log = tmp_path / "worker.log"
    with ChatServer() as server:
        endpoint = generation_services.register_model(
            name="loopback",
            backend="openai",
            backend_settings={"base_url": server.url, "model": "m", "max_retries": 0},
            actor=ada,
        )
        worker = CeleryWorker("default,gpu", log_path=log).start()
        try:
            run = services.start_false_refusal_run(
                prompt_set=prompt_set, models=[tiny, endpoint], classifier="string_match", actor=ada
            )
            labelled = FalseRefusalItem.objects.filter(run=run, status="done")

            def moved() -> tuple[int, int]:
                return labelled.count(), log.stat().st_size if log.exists() else 0

            wait_for_progress(
                lambda: selectors.run_progress(run)["finished"],
                progress=moved,
                worker=worker,
                log=log,
            )
        finally:
            worker.stop()
        assert len(server.chat_requests) == 12  # the endpoint got each prompt exactly once
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.DONE, run.error
    items = FalseRefusalItem.objects.filter(run=run)
    assert items.count() == 24
    assert set(items.values_list("status", "attempts")) == {("done", 1)}
    assert set(items.values_list("label", flat=True)) <= {
        "full_compliance",
        "full_refusal",
        "partial_refusal",
    }
    assert all(item.rationale for item in items)
    loopback = items.filter(model=endpoint).select_related("prompt")
    assert all(i.response == "reply to: " + i.prompt.text for i in loopback)
    assert {m["model"] for m in selectors.run_rates(run)} == {"loopback", "tiny-local"}
