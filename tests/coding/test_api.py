"""The coding API: a researcher reads their tasks' progress and agreement; nobody else can."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.coding import agreement, selectors, services

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_task_list_and_agreement(make_task, user_factory):
    coders = [user_factory(n) for n in ("ana", "ben", "cem")]
    task = make_task(items=3, overlap=3, coders=coders)
    plan = {
        "ana": ["full_refusal", "full_refusal", "partial_refusal"],
        "ben": ["full_refusal", "partial_refusal", "partial_refusal"],
        "cem": ["full_compliance", "full_refusal", "partial_refusal"],
    }
    for coder in coders:
        for label in plan[coder.username]:
            a = services.next_assignment(task=task, coder=coder)
            services.record_code(task=task, coder=coder, item_id=a.item_id, label=label)

    owner = _client(task.owner)
    listed = owner.get("/api/coding/").json()
    assert [t["id"] for t in listed] == [task.pk]
    assert listed[0]["progress"] == {
        "items": 3,
        "overlap": 3,
        "codes": 9,
        "target": 9,
        "complete_items": 3,
        "live_claims": 0,
        "percent": 100,
    }
    detail = owner.get(f"/api/coding/{task.pk}/").json()
    units = list(zip(*plan.values(), strict=True))
    assert detail["coders"]["krippendorff_alpha"] == pytest.approx(
        agreement.krippendorff_alpha_nominal(units)
    )
    assert detail["coders"]["fleiss_kappa"] == pytest.approx(agreement.fleiss_kappa(units))
    assert [(p["coder_a"], p["coder_b"]) for p in detail["coders"]["pairs"]] == [
        ("ana", "ben"),
        ("ana", "cem"),
        ("ben", "cem"),
    ]
    assert detail["classifiers"] == []
    assert detail["study"] == task.study.slug and detail["scheme"] == "three_way"
    assert selectors.progress(task).percent == 100


def test_nobody_else_reads_a_task(make_task, user_factory):
    ana, olga = user_factory("ana"), user_factory("olga")
    task = make_task(items=1, coders=[ana])
    for user in (ana, olga):
        client = _client(user)
        assert client.get(f"/api/coding/{task.pk}/").status_code == 404
        assert client.get("/api/coding/").json() == []
    assert APIClient().get("/api/coding/").status_code == 401
