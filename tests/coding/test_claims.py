"""Claiming and coding items on the real PostgreSQL: at most k coders per item, never twice
to one coder, claims that run out come back, answers stored exactly once."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from annotation.coding import services
from annotation.coding.models import CodingAssignment, CodingItem, CodingMember, CodingTask
from studies.models import GenerationItem

pytestmark = pytest.mark.django_db


def _code_all(task, coder, label="full_refusal", now=None) -> list[int]:
    """Claim and answer until nothing is left; the positions coded, in order."""
    positions = []
    while (a := services.next_assignment(task=task, coder=coder, now=now)) is not None:
        services.record_code(task=task, coder=coder, item_id=a.item_id, label=label, now=now)
        positions.append(a.item.position)
    return positions


def test_items_come_from_the_studys_finished_natural_responses(natural_study):
    study, owner = natural_study(queries=3)
    GenerationItem.objects.filter(study=study, model__name="model-b", framing="benign").update(
        status="failed"
    )
    task = services.create_task(
        owner=owner, title="t", study=study, scheme="five_way", overlap=2, model_names=["model-b"]
    )
    items = list(task.items.select_related("generation_item"))
    assert len(items) == 6  # 3 queries × query-only and malicious (benign failed)
    assert {i.framing for i in items} == {"query_only", "malicious"}
    assert all(i.generation_item.model.name == "model-b" for i in items)
    malicious = next(i for i in items if i.framing == "malicious")
    scenario = malicious.generation_item.query.scenarios.get(motivation="malicious").text
    assert malicious.prompt_text.startswith(scenario)
    assert malicious.prompt_text.endswith(malicious.generation_item.query.text)
    assert malicious.response_text == malicious.generation_item.text


def test_a_seeded_sample_is_repeatable(natural_study, user_factory):
    study, owner = natural_study(queries=4)
    kwargs = dict(owner=owner, title="t", study=study, scheme="three_way", overlap=1)
    first = services.create_task(sample=5, seed=7, **kwargs)
    second = services.create_task(sample=5, seed=7, **kwargs)
    other = services.create_task(sample=5, seed=8, **kwargs)
    ids = [list(t.items.values_list("generation_item_id", flat=True)) for t in (first, second)]
    assert len(ids[0]) == 5 and ids[0] == ids[1]
    assert list(other.items.values_list("generation_item_id", flat=True)) != ids[0]


def test_bad_task_input_names_each_problem_and_writes_nothing(natural_study, user_factory):
    study, owner = natural_study(queries=1)
    stranger = user_factory("bob")
    with pytest.raises(services.CodingInputError) as err:
        services.create_task(
            owner=owner, title=" ", study=study, scheme="ten_way", overlap=0, framings=["strategy"]
        )
    assert set(err.value.problems) == {"title", "scheme", "overlap", "framings"}
    with pytest.raises(services.CodingInputError) as err:
        services.create_task(owner=stranger, title="t", study=study, scheme="five_way", overlap=2)
    assert err.value.problems == {"study": "Choose one of your studies."}
    with pytest.raises(services.CodingInputError) as err:
        services.create_task(
            owner=owner, title="t", study=study, scheme="five_way", overlap=2, model_names=["x"]
        )
    assert "no finished natural responses" in err.value.problems["study"]
    assert not CodingTask.objects.exists() and not CodingItem.objects.exists()


def test_each_item_goes_to_k_coders_and_never_twice_to_one(make_task, user_factory):
    ana, ben, cem = (user_factory(n) for n in ("ana", "ben", "cem"))
    task = make_task(items=3, overlap=2, coders=[ana, ben, cem])
    assert _code_all(task, ana) == [1, 2, 3]
    assert _code_all(task, ben) == [1, 2, 3]
    assert _code_all(task, cem) == []  # every item has its two codes
    per_item = Counter(CodingAssignment.objects.filter(task=task).values_list("item", flat=True))
    assert set(per_item.values()) == {2}


def test_reopening_shows_the_same_claim_and_a_resubmit_stores_nothing_new(make_task, user_factory):
    ana = user_factory("ana")
    task = make_task(items=2, overlap=1, coders=[ana])
    first = services.next_assignment(task=task, coder=ana)
    assert services.next_assignment(task=task, coder=ana).pk == first.pk
    assert CodingAssignment.objects.count() == 1

    stored, created = services.record_code(
        task=task, coder=ana, item_id=first.item_id, label="full_refusal"
    )
    assert created and stored.label == "full_refusal"
    again, created = services.record_code(
        task=task, coder=ana, item_id=first.item_id, label="full_compliance"
    )
    assert not created and again.label == "full_refusal"
    assert CodingAssignment.objects.filter(label__gt="").count() == 1

    with pytest.raises(services.CodingInputError):
        services.record_code(task=task, coder=ana, item_id=first.item_id, label="maybe")
    second = services.next_assignment(task=task, coder=ana)
    with pytest.raises(services.CodingInputError):
        services.record_code(task=task, coder=ana, item_id=second.item_id, label="maybe")
    assert CodingAssignment.objects.get(pk=second.pk).answered_at is None
    # Five-way labels are not three-way labels.
    with pytest.raises(services.CodingInputError):
        services.record_code(task=task, coder=ana, item_id=second.item_id, label="redirection")


def test_an_abandoned_claim_comes_back_after_the_claim_time(make_task, user_factory):
    ana, ben = user_factory("ana"), user_factory("ben")
    task = make_task(items=1, overlap=1, coders=[ana, ben], claim_minutes=30)
    now = timezone.now()
    held = services.next_assignment(task=task, coder=ana, now=now)
    assert services.next_assignment(task=task, coder=ben, now=now + timedelta(minutes=29)) is None

    # Past its time but nobody needed it yet: Ana still holds it when she comes back.
    later = now + timedelta(minutes=31)
    assert services.next_assignment(task=task, coder=ana, now=later).pk == held.pk
    # Abandoned again; Ben takes it over after the claim time.
    takeover = later + timedelta(minutes=31)
    taken = services.next_assignment(task=task, coder=ben, now=takeover)
    assert taken.item_id == held.item_id and taken.coder == ben
    with pytest.raises(services.ClaimLost):
        services.record_code(task=task, coder=ana, item_id=held.item_id, label="full_refusal")
    # Ana is not offered the item again, and the item has one live holder, Ben.
    assert services.next_assignment(task=task, coder=ana, now=takeover) is None
    services.record_code(task=task, coder=ben, item_id=taken.item_id, label="full_refusal")
    assert list(CodingAssignment.objects.filter(label__gt="").values_list("coder", flat=True)) == [
        ben.pk
    ]


def test_a_closed_task_gives_no_new_items_but_takes_answers_to_held_ones(make_task, user_factory):
    ana, ben = user_factory("ana"), user_factory("ben")
    task = make_task(items=2, overlap=1, coders=[ana, ben])
    held = services.next_assignment(task=task, coder=ana)
    services.set_status(task=task, status="closed")
    assert services.next_assignment(task=task, coder=ben) is None
    services.record_code(task=task, coder=ana, item_id=held.item_id, label="full_refusal")
    assert services.next_assignment(task=task, coder=ana) is None


def test_an_uninvited_account_cannot_claim(make_task, user_factory):
    task = make_task(items=1)
    with pytest.raises(CodingMember.DoesNotExist):
        services.next_assignment(task=task, coder=user_factory("eve"))


@pytest.mark.django_db(transaction=True)
def test_claims_skip_an_item_another_transaction_has_locked(make_task, user_factory):
    """SKIP LOCKED: a claimer passes over a locked item instead of waiting for it."""
    ana = user_factory("ana")
    task = make_task(items=2, overlap=3, coders=[ana])
    first = task.items.get(position=1)
    locked, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                CodingItem.objects.select_for_update().get(pk=first.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        with transaction.atomic():
            # Waiting on the lock would fail here instead of hanging the test.
            with connections["default"].cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '3s'")
            claimed = services.next_assignment(task=task, coder=ana)
        assert claimed.item.position == 2
    finally:
        release.set()
        holder.join()


@pytest.mark.django_db(transaction=True)
def test_many_coders_at_once_fill_every_item_exactly_k_times(make_task, user_factory):
    coders = [user_factory(f"coder{n}") for n in range(8)]
    task = make_task(items=12, overlap=3, coders=coders)
    barrier = threading.Barrier(len(coders))

    def work(coder) -> list[int]:
        barrier.wait()
        try:
            return _code_all(task, coder)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(coders)) as pool:
        done = list(pool.map(work, coders))
    for positions in done:
        assert len(positions) == len(set(positions))  # never the same item twice
    per_item = Counter(p for positions in done for p in positions)
    assert per_item == {position: 3 for position in range(1, 13)}
    stored = Counter(
        CodingAssignment.objects.filter(task=task, answered_at__isnull=False).values_list(
            "item__position", flat=True
        )
    )
    assert stored == per_item
    assert CodingAssignment.objects.filter(task=task).count() == 36
