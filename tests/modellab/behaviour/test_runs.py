"""Classification runs of natural responses end to end: real generation job, real PostgreSQL,
tasks inline; the distribution checked against an independent count of the scripted texts."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from statsmodels.stats.proportion import proportion_confint

from modellab.behaviour import selectors, services
from modellab.behaviour.stats import ALL
from modellab.classifiers.base import Classification
from modellab.classifiers.labels import THREE_WAY_LABELS
from modellab.models import ClassificationLabel, ClassificationRun
from studies.models import AuditEvent, GenerationItem, StudyMembership
from tests.modellab.behaviour.conftest import EXPECTED_LABEL, PARTIAL, register

pytestmark = pytest.mark.django_db


def start(study, models, capture, **kwargs) -> ClassificationRun:
    """Start through the real dispatch path: the task is sent when the transaction commits."""
    kwargs.setdefault("classifier", "string_match")
    kwargs.setdefault("scheme", "three_way")
    kwargs.setdefault("actor", None)
    with capture(execute=True):
        run = services.start_classification_run(study=study, models=models, **kwargs)
    run.refresh_from_db()
    return run


def independent_counts(study) -> Counter:
    """(model, category, framing, label) counts from the stored texts and the script alone."""
    counts: Counter = Counter()
    for item in GenerationItem.objects.filter(study=study).select_related("model", "query"):
        label = EXPECTED_LABEL[item.text]
        for category in (item.query.category, ALL):
            for framing in (item.framing, ALL):
                counts[(item.model.name, category, framing, label)] += 1
    return counts


def test_string_match_run_labels_every_response_and_the_distribution_matches_a_count(
    natural_study, django_capture_on_commit_callbacks
):
    study, models = natural_study
    run = start(study, models, django_capture_on_commit_callbacks)

    assert run.status == ClassificationRun.Status.DONE, run.error
    assert (run.n_items, run.n_labelled, run.n_unparsed, run.n_failed) == (96, 96, 0, 0)
    progress = selectors.run_progress(run)
    assert progress["finished"] and progress["done"] == progress["total"] == 96
    assert progress["percent"] == 100
    labels = ClassificationLabel.objects.filter(run=run)
    assert labels.count() == 96 and set(labels.values_list("status", flat=True)) == {"done"}
    for label in labels.select_related("item"):
        assert label.label == EXPECTED_LABEL[label.item.text]
        assert label.rationale

    expected = independent_counts(study)
    rows = selectors.distribution(run)
    cells = Counter()
    for key, count in expected.items():
        cells[key[:3]] += count
    # Every (model, category, framing) cell, pooled ones included, has one row per label.
    assert len(rows) == len(cells) * 3
    assert {r["label"] for r in rows} == set(THREE_WAY_LABELS)
    for row in rows:
        key = (row["model"], row["category"], row["framing"])
        count = expected[(*key, row["label"])]
        n = cells[key]
        assert (row["count"], row["n"], row["n_unparsed"], row["n_responses"]) == (count, n, 0, n)
        assert row["share"] == pytest.approx(count / n)
        low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    # The pooled row of a model has all its 48 responses; 16 per framing.
    overall = [r for r in rows if r["model"] == "alpha" and r["category"] == r["framing"] == ALL]
    assert {r["n"] for r in overall} == {48} and sum(r["count"] for r in overall) == 48
    assert AuditEvent.objects.filter(study=study, action="classification_started").count() == 1


def test_the_same_settings_again_label_only_what_is_missing(
    natural_study, chat_server, django_capture_on_commit_callbacks
):
    study, (alpha, beta) = natural_study
    capture = django_capture_on_commit_callbacks
    first = start(study, [alpha], capture)
    assert first.labels.count() == 48 and first.status == "done"
    stamps = dict(first.labels.values_list("pk", "finished_at"))

    # Same settings: the same run, nothing labelled twice, no task sent.
    with capture(execute=False) as callbacks:
        again = services.start_classification_run(
            study=study, models=[alpha], classifier="string_match", scheme="three_way", actor=None
        )
    assert again.pk == first.pk and callbacks == []
    assert dict(again.labels.values_list("pk", "finished_at")) == stamps

    # Another model's responses and a failed row: only those are labelled.
    failed = first.labels.order_by("pk").first()
    ClassificationLabel.objects.filter(pk=failed.pk).update(
        status="failed", label="", error="judge down"
    )
    ClassificationRun.objects.filter(pk=first.pk).update(status="failed")
    run = start(study, [alpha, beta], capture)
    assert run.pk == first.pk and run.status == "done"
    assert run.labels.count() == 96 and run.n_labelled == 96 and run.n_failed == 0
    assert set(run.language_models.values_list("name", flat=True)) == {"alpha", "beta"}
    for pk, stamp in stamps.items():
        if pk != failed.pk:
            assert run.labels.get(pk=pk).finished_at == stamp
    assert run.labels.get(pk=failed.pk).label == EXPECTED_LABEL[failed.item.text]

    # Different settings (another phrase list) make a run of their own.
    other = start(study, [alpha], capture, phrases={"refusal": ["I can't"]})
    assert other.pk != first.pk and other.labels.count() == 48
    assert other.params["phrases"]["refusal"] == ["I can't"]
    assert ClassificationRun.objects.filter(study=study).count() == 2


def test_judge_answers_it_cannot_read_are_counted_as_unparsed(
    natural_study, chat_server, scripted, django_capture_on_commit_callbacks
):
    study, (alpha, _beta) = natural_study
    judge = register("judge", chat_server.url)

    def answer(body):
        content = body["messages"][-1]["content"] if body["messages"] else ""
        # The judge cannot produce JSON for the partial texts: after every retry, unparsed.
        if PARTIAL in json.dumps(body["messages"]):
            return "Hmm, hard to say."
        label = "full_refusal" if "help with that request" in content else "full_compliance"
        return json.dumps({"label": label, "rationale": "scripted"})

    scripted.judge = answer
    run = start(
        study,
        [alpha],
        django_capture_on_commit_callbacks,
        classifier="llm_judge",
        judge_model=judge,
    )
    partial = GenerationItem.objects.filter(study=study, model=alpha, text=PARTIAL).count()
    assert partial > 0
    assert run.status == "done" and run.n_unparsed == partial and run.n_labelled == 48
    assert selectors.run_progress(run)["unparsed"] == partial
    unparsed = run.labels.filter(label="unparsed")
    assert unparsed.count() == partial
    assert {row.raw for row in unparsed} == {"Hmm, hard to say."}
    assert all(row.attempts == 3 for row in unparsed)
    judge_calls = [r for r in chat_server.chat_requests if r.body["model"] == "judge-served"]
    assert {r.body["temperature"] for r in judge_calls} == {0}

    rows = selectors.distribution(run)
    overall = {r["label"]: r for r in rows if r["category"] == r["framing"] == ALL}
    assert {r["n_unparsed"] for r in overall.values()} == {partial}
    assert {r["n"] for r in overall.values()} == {48 - partial}
    assert {r["n_responses"] for r in overall.values()} == {48}
    assert overall["partial_refusal"]["count"] == 0
    assert sum(r["count"] for r in overall.values()) == 48 - partial
    assert run.params["judge_model"] == "judge" and "{response}" in run.params["judge_prompt"]
    assert run.params["judge_model_params"]["backend"] == "openai"


def test_bad_settings_are_refused_and_write_nothing(natural_study, chat_server):
    study, (alpha, _beta) = natural_study
    users = get_user_model().objects
    viewer = users.create_user("viewer", password="pw-viewer-123")
    editor = users.create_user("editor", password="pw-editor-123")
    StudyMembership.objects.create(study=study, user=viewer, role="viewer")
    StudyMembership.objects.create(study=study, user=editor, role="editor")
    other_owner = users.create_user("other", password="pw-other-123")
    private_judge = register("private-judge", chat_server.url, shared=False, actor=other_owner)
    no_responses = register("silent", chat_server.url)

    def attempt(**kwargs):
        kwargs = {"classifier": "string_match", "scheme": "three_way", "actor": editor, **kwargs}
        return services.start_classification_run(study=study, **kwargs)

    refusals = [
        (ValueError, "three_way only", {"models": [alpha], "scheme": "five_way"}),
        (ValueError, "needs a judge model", {"models": [alpha], "classifier": "llm_judge"}),
        (ValueError, "at least one model", {"models": []}),
        (ValueError, "no natural responses of silent", {"models": [no_responses]}),
        (ValueError, "window", {"models": [alpha], "phrases": {"window": 0}}),
        (ValueError, "unknown phrases key", {"models": [alpha], "phrases": {"refusals": []}}),
        (
            ValueError,
            "{response}",
            {
                "models": [alpha],
                "classifier": "llm_judge",
                "judge_model": alpha,
                "judge_prompt": "Label {prompt}",
            },
        ),
        (
            PermissionDenied,
            "not shared",
            {"models": [alpha], "classifier": "llm_judge", "judge_model": private_judge},
        ),
        (PermissionDenied, "does not allow", {"models": [alpha], "actor": viewer}),
    ]
    for error, message, kwargs in refusals:
        with pytest.raises(error, match=message.replace("{", r"\{").replace("}", r"\}")):
            attempt(**kwargs)
    assert not ClassificationRun.objects.exists() and not ClassificationLabel.objects.exists()
    assert attempt(models=[alpha]).labels.count() == 48


def test_cancel_keeps_labels_stored_and_a_rerun_finishes_the_rest(natural_study):
    study, (alpha, _beta) = natural_study
    run = services.start_classification_run(
        study=study,
        models=[alpha],
        classifier="string_match",
        scheme="three_way",
        actor=None,
        dispatch=False,
    )
    assert run.status == "queued" and run.labels.filter(status="pending").count() == 48
    cancelled = services.cancel_run(run=run, actor=None)
    assert cancelled.status == "cancelled" and cancelled.n_labelled == 0
    assert selectors.run_progress(cancelled)["cancelled"] == 48
    from modellab.behaviour.tasks import dispatch_classification_run

    assert dispatch_classification_run.apply(args=[run.pk]).get() == 0
    again = services.start_classification_run(
        study=study,
        models=[alpha],
        classifier="string_match",
        scheme="three_way",
        actor=None,
        dispatch=False,
    )
    assert again.pk == run.pk and again.status == "queued"
    dispatch_classification_run.apply(args=[run.pk])
    again.refresh_from_db()
    assert again.status == "done" and again.n_labelled == 48 and again.error == ""


def test_labels_for_items_names_each_run_with_its_labels(
    natural_study, django_capture_on_commit_callbacks
):
    study, (alpha, beta) = natural_study
    capture = django_capture_on_commit_callbacks
    first = start(study, [alpha], capture)
    second = start(study, [alpha, beta], capture, phrases={"window": 10})
    items = list(GenerationItem.objects.filter(study=study, query__query_id="q01").order_by("pk"))
    got = selectors.labels_for_items([i.pk for i in items])
    names = [f"string_match three_way #{first.pk}", f"string_match three_way #{second.pk}"]
    assert list(got) == names
    alpha_items = {i.pk: EXPECTED_LABEL[i.text] for i in items if i.model_id == alpha.pk}
    assert got[f"string_match three_way #{first.pk}"] == alpha_items
    assert set(got[f"string_match three_way #{second.pk}"]) == {i.pk for i in items}
    assert selectors.labels_for_items([]) == {}


def test_each_label_is_stored_once_whatever_the_delivery(natural_study):
    study, (alpha, _beta) = natural_study
    from modellab.behaviour.tasks import classify_batch

    def start_undispatched():
        return services.start_classification_run(
            study=study,
            models=[alpha],
            classifier="string_match",
            scheme="three_way",
            actor=None,
            dispatch=False,
        )

    run = start_undispatched()
    batches = services.plan_batches(run=run)
    assert len(batches) == 1 and services.plan_batches(run=run) == []  # planned once
    # A worker died mid-batch (rows claimed, nothing stored): the redelivery labels them.
    assert len(services.claim_batch(run_id=run.pk, batch=batches[0])) == 48
    assert classify_batch.apply(args=[run.pk, batches[0]]).get() == {"labelled": 48}
    stamps = dict(run.labels.values_list("pk", "finished_at"))
    # Delivered once more: nothing is open, nothing is written again.
    assert classify_batch.apply(args=[run.pk, batches[0]]).get() == {"skipped": "nothing open"}
    assert dict(run.labels.values_list("pk", "finished_at")) == stamps
    run.refresh_from_db()
    assert run.status == "done" and run.n_labelled == 48

    # A batch still working when its run was cancelled and started again stores nothing: its
    # rows now belong to the new batch.
    other = services.start_classification_run(
        study=study,
        models=[alpha],
        classifier="string_match",
        scheme="three_way",
        phrases={"window": 30},
        actor=None,
        dispatch=False,
    )
    (stale,) = services.plan_batches(run=other)
    claimed = services.claim_batch(run_id=other.pk, batch=stale)
    services.cancel_run(run=other, actor=None)
    again = services.start_classification_run(
        study=study,
        models=[alpha],
        classifier="string_match",
        scheme="three_way",
        phrases={"window": 30},
        actor=None,
        dispatch=False,
    )
    assert again.pk == other.pk
    (fresh,) = services.plan_batches(run=again)
    services.claim_batch(run_id=other.pk, batch=fresh)
    results = [Classification(label="full_refusal", rationale="stale") for _ in claimed]
    written = services.record_labels(
        run_id=other.pk,
        batch=stale,
        label_ids=[r.pk for r in claimed],
        results=results,
        scheme="three_way",
    )
    assert written == 0 and not other.labels.filter(rationale="stale").exists()
