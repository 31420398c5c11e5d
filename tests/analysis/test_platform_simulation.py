"""Known answer through the whole platform: 480 simulated participants join the seed study,
answer through the real recording code, and the stored analysis recovers the true effects."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from django.db import connection

from annotation import services
from annotation.models import Participant, SlotItem, Trial
from studies import analysis_jobs
from studies.models import AnalysisResult

pytestmark = pytest.mark.django_db(transaction=True)

# True effects on every measure, relative to full compliance, in scale points.
TRUE_EFFECTS = {
    "full_compliance": 0.0,
    "partial_compliance": -0.6,
    "redirection": -1.0,
    "explanation_based": -1.3,
    "direct_refusal": -1.6,
}
MALICIOUS_EFFECT = -0.2


def simulate_participants(study, n: int, seed: int, threads: int = 1, first: int = 0) -> None:
    """n participants take the study through the services; threads>1 needs committed data."""
    query_rng = np.random.default_rng(seed)
    query_effect = {q.pk: query_rng.normal(0, 0.3) for q in study.queries.order_by("pk")}
    questions = list(study.questions.filter(is_attention_check=False))
    if threads == 1:
        for index in range(first, first + n):
            simulate_one(study, index, seed, query_effect, questions)
        return

    def run(indexes: range) -> None:
        try:
            for index in indexes:
                simulate_one(study, index, seed, query_effect, questions)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        # Participants join in index order within each thread; slots stay balanced overall.
        list(pool.map(run, [range(first + t, first + n, threads) for t in range(threads)]))


def simulate_one(study, index: int, seed: int, query_effect: dict, questions: list) -> None:
    rng = np.random.default_rng([seed, index])
    participant = services.join_study(study=study, external_id=f"sim-{index}", recruitment={})
    services.give_consent(participant=participant)
    participant = services.mark_instructions_read(participant=participant)
    person = rng.normal(0, 0.5)
    while participant.status == Participant.Status.ACTIVE:
        position = participant.position
        item = SlotItem.objects.select_related("attention_check").get(
            slot_id=participant.slot_id, position=position
        )
        trial = services.show_item(participant=participant, position=position)
        if trial is None:  # pick the first topic still on offer, as a participant would
            seen = Trial.objects.filter(participant=participant, query__isnull=False)
            query = (
                study.queries.filter(category=item.category)
                .exclude(pk__in=seen.values("query"))
                .order_by("topic")
                .first()
            )
            trial = services.choose_topic(
                participant=participant, position=position, query_pk=query.pk
            )
        if item.kind == SlotItem.Kind.ATTENTION:
            answers = {item.attention_check.key: str(item.attention_check.correct_value)}
        else:
            mean = 5.0 + TRUE_EFFECTS[item.response_type] + person
            mean += query_effect[trial.query_id]
            mean += MALICIOUS_EFFECT if item.motivation == "malicious" else 0.0
            answers = {
                q.key: str(int(np.clip(np.rint(mean + rng.normal(0, 0.8)), 1, 7)))
                for q in questions
            }
        participant = services.record_answers(
            participant=participant,
            position=position,
            raw_answers=answers,
            submission_id=uuid.uuid4(),
        ).participant


@pytest.mark.long_running
def test_stored_analysis_recovers_the_true_effects(make_study):
    study = make_study(target_participants=480)
    simulate_participants(study, 480, seed=11, threads=4)
    assert Participant.objects.filter(study=study, status="completed").count() == 480

    queued = AnalysisResult.objects.create(study=study, inclusion="included")
    result = analysis_jobs.compute(queued.pk)  # what the Celery task runs
    assert result.status == AnalysisResult.Status.DONE, result.error
    report = result.report
    assert report["meta"]["n_participants"] == 480
    assert report["meta"]["n_ratings"] >= 480 * 8 * 10

    model = next(m for m in report["mixed_models"] if m["measure"] == "helpfulness")
    assert model["converged"]
    for coefficient in model["coefficients"]:
        response_type = coefficient["response_type"]
        if response_type and ":" not in coefficient["term"]:
            # Rounding and clipping to 1..7 shrink effects a little; the truth stays close.
            assert coefficient["estimate"] == pytest.approx(TRUE_EFFECTS[response_type], abs=0.3)
            assert coefficient["estimate"] < 0
    gap = next(
        g
        for g in report["gap_reduction"]
        if g["measure"] == "helpfulness" and g["response_type"] == "partial_compliance"
    )
    # Truth: partial compliance closes (1.6 - 0.6) / 1.6 = 62.5% of the direct-refusal gap.
    assert gap["reduction"] == pytest.approx(0.625, abs=0.12)
    assert gap["ci_low"] < gap["reduction"] < gap["ci_high"]
    checks = report["reliability"]["attention_checks"]
    assert checks and all(c["pass_rate"] == 1.0 for c in checks)
    assert "overall_experience" in report["meta"]["measures"]
