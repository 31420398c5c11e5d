"""Reward-model scoring on a real Celery worker (gpu queue, CPU device) with a tiny
random-weight sequence-classification model the test builds: every score filled exactly once,
equal to the model's own output computed here."""

from __future__ import annotations

import pytest

from modellab.models import RewardRun, RewardScore
from modellab.rewards import scorers, selectors, services
from studies.generation import services as generation_services
from tests.generation.tiny_model import build_tiny_reward_model
from tests.workers import CeleryWorker, purge_queues, wait_for_progress

pytestmark = pytest.mark.django_db(transaction=True)


def test_reward_model_run_on_a_worker_fills_every_score_once(owned_study, researcher, tmp_path):
    purge_queues("default", "gpu")
    path = build_tiny_reward_model(tmp_path / "reward")
    model = generation_services.register_model(
        name="tiny-reward",
        backend="transformers",
        backend_settings={"path": str(path), "device": "cpu", "batch_size": 4},
        queue="gpu",
        actor=researcher,
    )
    log = tmp_path / "worker.log"
    # One torch thread: on a shared, busy test machine more threads thrash (see bench/README).
    worker = CeleryWorker("default,gpu", log_path=log, OMP_NUM_THREADS="1").start()
    try:
        run = services.start_reward_run(
            study=owned_study, model=model, scorer="reward_model", actor=researcher
        )
        done = RewardScore.objects.filter(run=run, status="done")

        def moved() -> tuple[int, int]:
            return done.count(), log.stat().st_size if log.exists() else 0

        wait_for_progress(
            lambda: selectors.run_progress(run)["finished"], progress=moved, worker=worker, log=log
        )
    finally:
        worker.stop()

    run.refresh_from_db()
    assert run.status == RewardRun.Status.DONE, run.error
    scores = list(RewardScore.objects.filter(run=run).select_related("variant__query"))
    assert len(scores) == run.n_total == run.n_done == run.params["stimuli"] > 0
    assert {s.status for s in scores} == {"done"} and {s.attempts for s in scores} == {1}
    # Three framings per response: the query alone and each of its two scenarios.
    assert {s.motivation for s in scores} == {"", "benign", "malicious"}
    # The worker's scores are the model's own single logit for each conversation.
    sample = sorted(scores, key=lambda s: s.pk)[:: max(1, len(scores) // 12)]
    conversations = services.conversations_for(sample)
    direct = scorers.RewardModelScorer(path=str(path), device="cpu", batch_size=1)
    for score, outcome in zip(sample, direct.score(conversations), strict=True):
        assert score.score == pytest.approx(outcome.score, abs=1e-4)
        assert score.input_sha256 == scorers.input_sha256(conversations[sample.index(score)])
    assert "loaded reward model" in log.read_text()
    assert log.read_text().count("loaded reward model") == 1  # once per worker process
