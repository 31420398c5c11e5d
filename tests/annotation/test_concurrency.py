"""Many participants joining at once on the real PostgreSQL: distinct slots, exact balance."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from annotation import services
from annotation.errors import StudyFull
from annotation.models import Slot

pytestmark = pytest.mark.django_db(transaction=True)

JOINERS = 200
# Below PostgreSQL's default max_connections (100), leaving room for the test's own.
THREADS = 40


def _join_all(study, n: int) -> list[int | None]:
    barrier = threading.Barrier(THREADS)

    def join(n_: int) -> int | None:
        if n_ < THREADS:
            barrier.wait()  # release the first wave at the same instant
        try:
            participant = services.join_study(study=study, external_id=f"P{n_}", recruitment={})
            return services.give_consent(participant=participant).pk
        except StudyFull:
            return None
        finally:
            connection.close()  # each thread had its own connection

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(join, range(n)))


def test_concurrent_joins_get_distinct_slots_and_balanced_cells(make_study):
    study = make_study(target_participants=480)
    slot_pks = _join_all(study, JOINERS)
    assert None not in slot_pks
    assert len(set(slot_pks)) == JOINERS
    claimed = Slot.objects.filter(study=study, status=Slot.Status.CLAIMED)
    # Lowest-free-first claiming leaves no holes, so the filled slots are a balanced prefix.
    assert sorted(claimed.values_list("index", flat=True)) == list(range(JOINERS))
    per_cell = Counter(str(sorted(slot.cell.items())) for slot in claimed)
    assert len(per_cell) == 4  # the refusal strategies
    assert max(per_cell.values()) - min(per_cell.values()) <= 1


def test_more_joiners_than_slots_fill_exactly_the_plan(make_study):
    study = make_study(target_participants=50)
    slot_pks = _join_all(study, 120)
    taken = [pk for pk in slot_pks if pk is not None]
    assert len(taken) == len(set(taken)) == 50
    per_cell = Counter(
        str(sorted(s.cell.items())) for s in Slot.objects.filter(study=study, pk__in=taken)
    )
    assert max(per_cell.values()) - min(per_cell.values()) <= 1


def test_a_block_submitted_from_several_tabs_at_once_is_stored_once(make_study):
    from annotation.models import BlockAnswer, Participant
    from tests.annotation.block_fixtures import GOOD_BEFORE, add_blocks

    study = make_study(target_participants=2)
    add_blocks(study)
    participant = services.join_study(study=study, external_id="tabs", recruitment={})
    services.give_consent(participant=participant)
    services.mark_instructions_read(participant=participant)
    tabs = 8
    barrier = threading.Barrier(tabs)

    def submit(_: int) -> str:
        barrier.wait()
        try:
            return services.record_block_answers(
                participant=participant, block_key="demographics", raw_answers=GOOD_BEFORE
            ).status
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=tabs) as pool:
        outcomes = Counter(pool.map(submit, range(tabs)))
    assert outcomes == {"stored": 1, "duplicate": tabs - 1}
    assert BlockAnswer.objects.filter(participant=participant).count() == 3
    assert Participant.objects.get(pk=participant.pk).completed_blocks == ["demographics"]
