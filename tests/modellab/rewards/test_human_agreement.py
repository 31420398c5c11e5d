"""Reward scores against what participants rated: participants answer a launched study
through the real services, the judge scores every stimulus; the selector matches each rated
(response shown, scenario read) to its score."""

from __future__ import annotations

import csv
import io
import json
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from scipy import stats

from annotation import services as annotation_services
from annotation.models import Participant, SlotItem, Trial
from modellab.rewards import selectors, services
from modellab.rewards.tasks import dispatch_reward_run
from studies.domain import RESPONSE_TYPES
from studies.generation import services as generation_services
from studies.models import StudyMembership
from tests.generation.chat_server import Reply

pytestmark = pytest.mark.django_db

# The judge's score per type: redirection above partial compliance, everything else in the
# order people rate below (1 = direct refusal … 5 = full compliance).
JUDGE = {
    "direct_refusal": -3,
    "explanation_based": -2,
    "redirection": 1,
    "partial_compliance": 0,
    "full_compliance": 3,
}


def complete_everyone(study, measure: str, n: int) -> None:
    """n participants rate every item: ``measure`` = 1 + the type's position in the design's
    order, every other question 4, attention checks right."""
    for i in range(n):
        participant = annotation_services.join_study(
            study=study, external_id=f"P{i}", recruitment={}
        )
        annotation_services.give_consent(participant=participant)
        participant.refresh_from_db()
        while participant.status == Participant.Status.ACTIVE:
            trial = annotation_services.show_item(
                participant=participant, position=participant.position
            )
            if trial is None:  # topic mode: take the first topic still on offer
                item = SlotItem.objects.get(
                    slot_id=participant.slot_id, position=participant.position
                )
                used = Trial.objects.filter(participant=participant, query__isnull=False).values(
                    "query"
                )
                query = study.queries.filter(category=item.category).exclude(pk__in=used).first()
                trial = annotation_services.choose_topic(
                    participant=participant, position=participant.position, query_pk=query.pk
                )
            item = trial.slot_item
            answers = {}
            for question in annotation_services.item_questions(item):
                if question.correct_value:
                    answers[question.key] = str(question.correct_value)
                elif question.key == measure:
                    answers[question.key] = str(1 + RESPONSE_TYPES.index(item.response_type))
                else:
                    answers[question.key] = "4"
            participant = annotation_services.record_answers(
                participant=participant,
                position=participant.position,
                raw_answers=answers,
                submission_id=uuid.uuid4(),
            ).participant


def test_agreement_with_the_mean_rating_of_a_measure(make_study, chat_server, eager_tasks, client):
    owner = get_user_model().objects.create_user("olga", password="pw-olga-123456")
    study = make_study(launch=True, target_participants=6)
    StudyMembership.objects.create(study=study, user=owner, role="owner")
    measure = selectors.measures(study)[0].key
    complete_everyone(study, measure, 6)
    assert not Participant.objects.filter(study=study, excluded=True).exists()

    types = dict(study.queries.values_list("variants__text", "variants__response_type").distinct())

    def handler(request):
        content = request.body["messages"][1]["content"]
        reply = content.split("The assistant's reply:\n<<<\n", 1)[1].rsplit("\n>>>", 1)[0]
        answer = json.dumps({"score": JUDGE[types[reply]], "rationale": "scripted"})
        return Reply(json={"choices": [{"message": {"role": "assistant", "content": answer}}]})

    chat_server.handler = handler
    judge = generation_services.register_model(
        name="judge",
        backend="openai",
        backend_settings={"base_url": chat_server.url, "model": "j", "max_retries": 0},
    )
    run = services.start_reward_run(
        study=study, model=judge, scorer="llm_judge", actor=owner, dispatch=False
    )
    dispatch_reward_run.apply(args=[run.pk])

    result = selectors.agreement_with(run, measure)
    overall = result["overall"]
    # Independently: the stimuli people rated, from the trials they saw.
    rated = {
        (t.variant_id, t.slot_item.motivation)
        for t in Trial.objects.filter(
            participant__study=study, variant__isnull=False
        ).select_related("slot_item", "variant")
    }
    type_of = dict(
        Trial.objects.filter(participant__study=study, variant__isnull=False).values_list(
            "variant_id", "variant__response_type"
        )
    )
    per_type = {t: sum(1 for v, _m in rated if type_of[v] == t) for t in RESPONSE_TYPES}
    n = len(rated)
    assert overall["n"] == n > 5
    assert (
        overall["ratings"]
        == Trial.objects.filter(participant__study=study, variant__isnull=False).count()
    )
    # Pairs of stimuli of one type tie for people (same mean); every other pair is compared
    # and agrees except redirection vs partial compliance, which the judge orders the other way.
    same_type = sum(k * (k - 1) // 2 for k in per_type.values())
    compared = n * (n - 1) // 2 - same_type
    disagree = per_type["redirection"] * per_type["partial_compliance"]
    assert overall["pairs"] == n * (n - 1) // 2
    assert overall["human_ties"] == same_type and overall["reward_ties"] == 0
    assert overall["pairs_compared"] == compared
    assert overall["pairwise_agreement"] == pytest.approx((compared - disagree) / compared)
    assert 0 < overall["spearman"] < 1 and 0 < overall["kendall"] < 1
    # Per framing as well, when participants read more than one.
    motivations = {m for _v, m in rated}
    if len(motivations) > 1:
        assert {g["motivation"] for g in result["by_motivation"]} == motivations
        assert sum(g["n"] for g in result["by_motivation"]) == n

    # The per-stimulus download has the pairs; scipy on them gives the page's coefficients.
    client.force_login(owner)
    url = reverse("modellab:rewards-agreement-csv", args=[study.slug, run.pk])
    rows = list(
        csv.DictReader(io.StringIO(client.get(f"{url}?measure={measure}").content.decode()))
    )
    assert len(rows) == n
    assert {(int(r["variant_id"]), r["motivation"]) for r in rows} == rated
    for row in rows:
        assert float(row["human_mean"]) == 1 + RESPONSE_TYPES.index(row["response_type"])
        assert float(row["score"]) == JUDGE[row["response_type"]]
    scores = [float(r["score"]) for r in rows]
    means = [float(r["human_mean"]) for r in rows]
    assert overall["spearman"] == pytest.approx(stats.spearmanr(scores, means).statistic)
    assert overall["kendall"] == pytest.approx(stats.kendalltau(scores, means).statistic)
    assert sum(int(r["n_ratings"]) for r in rows) == overall["ratings"]
