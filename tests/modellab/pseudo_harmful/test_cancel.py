"""Cancelling a job while a target is answering: the answers of that batch are not stored, the
round stops; resuming asks only for what is missing and the job runs to its end."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection

from modellab.models import PseudoHarmfulJob, PseudoHarmfulProbe
from modellab.pseudo_harmful import services
from tests.modellab.pseudo_harmful.conftest import ROUND_1, ROUND_2, World, job_settings

pytestmark = pytest.mark.django_db(transaction=True)


class CancelOnFirstTarget(World):
    """Plays the world, and cancels the job (as its owner) when a target is first asked."""

    def __init__(self, owner) -> None:
        super().__init__([ROUND_1, ROUND_2])
        self.owner = owner
        self.cancelled = threading.Event()

    def __call__(self, request):
        if request.body["model"] in ("cautious-served", "relaxed-served"):
            with self.lock:
                if not self.cancelled.is_set():
                    job = PseudoHarmfulJob.objects.get()
                    services.cancel_job(job=job, actor=self.owner)
                    connection.close()  # this server thread's own connection
                    self.cancelled.set()
        return super().__call__(request)


def test_cancel_stores_nothing_more_and_resume_finishes(
    ada, bob, world, eager_tasks, django_capture_on_commit_callbacks
):
    world.server.handler = CancelOnFirstTarget(ada)
    with django_capture_on_commit_callbacks(execute=True):
        job = services.start_pseudo_harmful_job(owner=ada, **job_settings(world))
    job.refresh_from_db()
    assert job.status == PseudoHarmfulJob.Status.CANCELLED
    assert "probe(s) were not answered" in job.error
    probes = PseudoHarmfulProbe.objects.filter(candidate__job=job)
    assert probes.count() == 12
    assert not probes.exclude(response="").exists()  # the batch in flight stored nothing
    assert set(probes.values_list("status", flat=True)) == {"cancelled"}
    assert job.round_set.get().status == "cancelled"
    asked_before = len(world.server.chat_requests)

    with pytest.raises(PermissionDenied):
        services.resume_job(job=job, actor=bob)
    with django_capture_on_commit_callbacks(execute=True):
        services.resume_job(job=job, actor=ada)
    job.refresh_from_db()
    assert job.status == PseudoHarmfulJob.Status.VERIFYING, job.error
    assert set(probes.values_list("status", "attempts")) == {("done", 1)}
    assert probes.count() == 24
    # The generator was not asked again for round 1: one more call only (round 2).
    generator_calls = [r for r in world.server.chat_requests if r.body["model"] == "writer-served"]
    assert len(generator_calls) == 2
    assert len(world.server.chat_requests) > asked_before
    with pytest.raises(ValueError, match="only a job that was cancelled or failed"):
        services.resume_job(job=job, actor=ada)
