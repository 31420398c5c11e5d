"""After the real generation loop (tasks inline, the scripted loopback world of conftest.py):
two coders verify, the researcher decides the tie, and the set finalises, exports in PHTest's
layout, re-imports unchanged, reports its counts and measures its targets' false refusal."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from annotation.coding import services as coding_services
from annotation.models import CodingTask
from modellab.false_refusal import selectors as frr_selectors
from modellab.false_refusal import services as frr_services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING
from modellab.models import FalseRefusalRun, PseudoHarmfulCandidate, PseudoHarmfulJob
from modellab.pseudo_harmful import export, outcome, report, services
from tests.modellab.pseudo_harmful.conftest import A, B, C, job_settings
from tests.modellab.pseudo_harmful.outcome_fixtures import code_all

pytestmark = pytest.mark.django_db


def test_the_generated_set_finalises_exports_and_measures(
    ada, world, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = services.start_pseudo_harmful_job(owner=ada, **job_settings(world))
    job.refresh_from_db()
    assert job.status == PseudoHarmfulJob.Status.VERIFYING, job.error
    pk = dict(PseudoHarmfulCandidate.objects.filter(job=job).values_list("text", "pk"))
    position = dict(PseudoHarmfulCandidate.objects.filter(job=job).values_list("text", "position"))
    task = CodingTask.objects.get(pk=job.verification_task_id)
    coders = [
        get_user_model().objects.create_user(f"coder{i}", password="pw-coder-123") for i in (1, 2)
    ]
    # C: controversial twice; A: harmless twice; B: one of each (a tie).
    labels = [
        {f"ph:{pk[C]}": "controversial", f"ph:{pk[A]}": "harmless", f"ph:{pk[B]}": "harmless"},
        {f"ph:{pk[C]}": "controversial", f"ph:{pk[A]}": "harmless", f"ph:{pk[B]}": "controversial"},
    ]
    for coder, given in zip(coders, labels, strict=True):
        coding_services.invite_coder(task=task, username=coder.username, actor=ada)
        code_all(task, coder, given)

    with pytest.raises(outcome.FinaliseError) as caught:
        outcome.finalise_pseudo_harmful_job(job=job, actor=ada)
    assert caught.value.ties == [pk[B]]
    prompt_set = outcome.finalise_pseudo_harmful_job(
        job=job, actor=ada, tie_decisions={pk[B]: "harmless"}
    )
    job.refresh_from_db()

    rows = export.export_rows(job)
    ids = [f"ph{job.pk}-{position[t]}" for t in (C, A, B)]
    assert [(r["ID"], r["Request"], r["Harmfulness"]) for r in rows] == [
        (ids[0], C, "controversial"),
        (ids[1], A, "harmless"),
        (ids[2], B, "harmless"),
    ]
    assert [r["final_source"] for r in rows] == ["coders", "coders", "researcher"]
    assert rows[0]["target_refusals"] == "cautious: 2/0/of 2; relaxed: 0/2/of 2"
    assert rows[0]["judge_label"] == "controversial" and rows[0]["generator"] == "writer"
    assert (rows[0]["seed"], rows[0]["round"], rows[0]["rank"]) == ("seed#1", 1, 1)
    again = frr_services.import_prompt_set(
        name="weeds-again",
        data=export.to_csv(rows).encode("utf-8"),
        filename="weeds.csv",
        mapping=PHTEST_MAPPING,
        actor=ada,
    )
    assert list(again.prompts.order_by("position").values_list("external_id", "text", "label")) == [
        (r["ID"], r["Request"], r["Harmfulness"]) for r in rows
    ]
    assert list(
        prompt_set.prompts.order_by("position").values_list("external_id", "text", "label")
    ) == [(r["ID"], r["Request"], r["Harmfulness"]) for r in rows]

    data = report.quality_report(job, user=ada)
    assert data["rounds"] == [
        {"round": 1, "generated": 4, "duplicates": 1, "probed": 3, "refused": 3},
        {"round": 2, "generated": 4, "duplicates": 1, "probed": 3, "refused": 1},
    ]
    assert (data["refused_share"]["count"], data["refused_share"]["n"]) == (4, 6)
    assert [(lb["label"], lb["count"]) for lb in data["final_labels"]] == [
        ("harmless", 2),
        ("controversial", 1),
        ("harmful", 0),
    ]

    with django_capture_on_commit_callbacks(execute=True):
        run = outcome.measure_false_refusal(job=job, actor=ada)
    run.refresh_from_db()
    assert run.status == FalseRefusalRun.Status.DONE
    rates = {m["model"]: {g["group"]: g for g in m["groups"]} for m in frr_selectors.run_rates(run)}
    # The cautious target refuses A outright and half-refuses B (both harmless), refuses C.
    assert rates["cautious"]["harmless"]["full"]["count"] == 1
    assert rates["cautious"]["harmless"]["full_or_partial"]["count"] == 2
    assert rates["cautious"]["controversial"]["full"]["count"] == 1
    assert rates["relaxed"]["controversial"]["full_or_partial"]["count"] == 1
    assert rates["relaxed"]["harmless"]["full_or_partial"]["count"] == 0
