"""Writes of model behaviour: classification runs of natural responses and their labels.

Idempotency: a run is identified by its settings (classifier, scheme, judge model and its
parameters, judge prompt, phrase lists), hashed into ``settings_key``; a study has one run per
key. Starting the same settings again reuses that run: it adds a label row for every natural
response (of the chosen models) it has no row for, and, unless the run is still going, puts
its failed or cancelled rows back in the queue; rows already labelled are never labelled
again. A start that leaves nothing to label sends no task and labels nothing. Different
settings make a new run.

Exactly once: each dispatch puts the unlabelled rows no batch holds into batches (a UUID per
batch on the rows); a batch task claims only its own rows, so a redelivered batch redoes its
rows and a second dispatch never takes rows another batch holds; results are written under a
row lock, only onto rows still running.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from config.dispatch import send_on_commit
from modellab.classifiers import CLASSIFIERS, build_classifier
from modellab.classifiers.base import Classification, ClassifierInput
from modellab.classifiers.judge import DEFAULT_MAX_ATTEMPTS, default_judge_prompt
from modellab.classifiers.labels import FIVE_WAY, SCHEMES, THREE_WAY, UNPARSED, labels_of
from modellab.classifiers.string_match import Phrases
from modellab.models import ClassificationLabel, ClassificationRun
from studies import access
from studies.access import Action
from studies.generation.services import (
    batch_size_for,
    check_chat_model,
    check_model_host,
    model_params,
)
from studies.models import GenerationItem, LanguageModel, Study
from studies.services import record_audit

#: Bumped when labelling changes in a way that makes old labels incomparable.
CODE_VERSION = "1"

NATURAL_FRAMINGS: tuple[str, ...] = (
    GenerationItem.Framing.QUERY_ONLY,
    GenerationItem.Framing.BENIGN,
    GenerationItem.Framing.MALICIOUS,
)
OPEN_RUN = (ClassificationRun.Status.QUEUED, ClassificationRun.Status.RUNNING)
OPEN_LABEL = (ClassificationLabel.Status.PENDING, ClassificationLabel.Status.RUNNING)
FINISHED_RUN = (
    ClassificationRun.Status.DONE,
    ClassificationRun.Status.FAILED,
    ClassificationRun.Status.CANCELLED,
)
#: Rows per batch task for string matching (judge batches follow the judge model's settings).
STRING_MATCH_BATCH = 500


def natural_responses(study: Study, models: Sequence[LanguageModel] | None = None):
    """The study's finished natural responses (of ``models``, if given)."""
    items = GenerationItem.objects.filter(
        study=study, framing__in=NATURAL_FRAMINGS, status=GenerationItem.Status.DONE
    )
    return items if models is None else items.filter(model__in=list(models))


def models_with_natural_responses(study: Study):
    """The models that have at least one finished natural response in the study."""
    ids = natural_responses(study).values_list("model_id", flat=True).distinct()
    return LanguageModel.objects.filter(pk__in=ids).order_by("name")


def _validate(
    *,
    study: Study,
    classifier: str,
    scheme: str,
    models: Sequence[LanguageModel],
    judge_model: LanguageModel | None,
    phrases: dict | None,
    actor: AbstractBaseUser | None,
) -> None:
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {', '.join(CLASSIFIERS)}, not {classifier!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    if classifier == "string_match":
        if scheme != THREE_WAY:
            raise ValueError(
                f"string_match labels {THREE_WAY} only; use llm_judge for {FIVE_WAY} labels"
            )
        if judge_model is not None:
            raise ValueError("a judge model is only used by llm_judge")
    else:
        if judge_model is None:
            raise ValueError("llm_judge needs a judge model")
        if phrases is not None:
            raise ValueError("phrase lists are only used by string_match")
        if actor is not None and not access.can_use_model(actor, judge_model):
            raise PermissionDenied(f"model '{judge_model.name}' is not shared with you")
        check_model_host(judge_model)
        check_chat_model(judge_model)
    if not models:
        raise ValueError("choose at least one model whose natural responses to classify")
    available = set(models_with_natural_responses(study).values_list("pk", flat=True))
    missing = sorted(m.name for m in models if m.pk not in available)
    if missing:
        raise ValueError(
            f"no natural responses of {', '.join(missing)} in this study; "
            "generate them first (a natural generation job)"
        )


def _run_settings(
    *,
    classifier: str,
    scheme: str,
    judge_model: LanguageModel | None,
    judge_prompt: str,
    phrases: dict | None,
) -> dict:
    """What decides the labels (the run's identity) and its provenance."""
    return {
        "classifier": classifier,
        "scheme": scheme,
        "judge_model": judge_model.name if judge_model else None,
        "judge_model_params": model_params(judge_model) if judge_model else None,
        "judge_prompt": judge_prompt,
        "judge_max_attempts": DEFAULT_MAX_ATTEMPTS if judge_model else None,
        "phrases": phrases,
        "code_version": CODE_VERSION,
    }


def settings_key(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def _resolved_phrases(phrases: dict | None) -> dict:
    """The phrase lists and window string_match will use, defaults filled in: checked here
    (ValueError), so a bad list never reaches a worker, and stored whole, so the run says what
    it matched even after the defaults change."""
    resolved = Phrases.from_mapping(phrases or {})
    return {
        "refusal": list(resolved.refusal),
        "partial": list(resolved.partial),
        "window": resolved.window,
    }


@transaction.atomic
def start_classification_run(
    *,
    study: Study,
    classifier: str,
    scheme: str,
    models: Sequence[LanguageModel],
    judge_model: LanguageModel | None = None,
    judge_prompt: str | None = None,
    phrases: dict | None = None,
    actor: AbstractBaseUser | None,
    dispatch: bool = True,
) -> ClassificationRun:
    """Label the natural responses of ``models`` with a classifier (fills only what is missing).

    ``actor`` must be able to edit the study and, for llm_judge, to use the judge model; None
    is the system (tests, the shell). Bad settings raise ValueError and write nothing.
    Raises QueueUnavailable (after the commit) when the broker is down: the rows the start
    queued are then failed with the reason. The run returned carries ``queued``: how many
    responses this start put in the queue (0: nothing was left to label).
    """
    if actor is not None:
        access.require(actor, Action.EDIT, study)
    models = list(models)
    _validate(
        study=study,
        classifier=classifier,
        scheme=scheme,
        models=models,
        judge_model=judge_model,
        phrases=phrases,
        actor=actor,
    )
    prompt = ""
    if classifier == "string_match":
        phrases = _resolved_phrases(phrases)
    else:
        prompt = (judge_prompt or "").strip() or default_judge_prompt(scheme)
    # The classifier's own checks (e.g. a judging prompt without {response}), before any write.
    build_classifier(
        classifier,
        scheme=scheme,
        judge_model=judge_model,
        judge_prompt=prompt or None,
        phrases=phrases,
        max_attempts=DEFAULT_MAX_ATTEMPTS,
    )
    settings = _run_settings(
        classifier=classifier,
        scheme=scheme,
        judge_model=judge_model,
        judge_prompt=prompt,
        phrases=phrases,
    )
    key = settings_key(settings)
    # The study's row serialises starts: two at once with the same settings make one run.
    Study.objects.select_for_update().get(pk=study.pk)
    runs = ClassificationRun.objects.select_for_update()
    run = runs.filter(study=study, settings_key=key).first()
    if run is None:
        run = ClassificationRun.objects.create(
            study=study,
            classifier=classifier,
            scheme=scheme,
            judge_model=judge_model,
            judge_prompt=prompt,
            phrases=phrases,
            settings_key=key,
            params=settings,
            created_by=actor,
        )
    run.language_models.add(*models)
    was_open = run.status in OPEN_RUN
    ClassificationLabel.objects.bulk_create(
        [ClassificationLabel(run=run, item=item) for item in natural_responses(study, models)],
        ignore_conflicts=True,
    )
    if not was_open:
        # A finished run: whatever it did not label (failed, cancelled) is queued again.
        run.labels.exclude(status=ClassificationLabel.Status.DONE).update(
            status=ClassificationLabel.Status.PENDING, batch=None, attempts=0, error=""
        )
    to_label = run.labels.filter(status=ClassificationLabel.Status.PENDING, batch=None).count()
    if to_label and not was_open:
        run.status = ClassificationRun.Status.QUEUED
        run.error = ""
        run.finished_at = None
        run.save(update_fields=["status", "error", "finished_at"])
    elif not to_label and run.status != ClassificationRun.Status.DONE and not was_open:
        # Nothing left to label (e.g. a cancelled run whose rows had all been labelled).
        run.status = ClassificationRun.Status.QUEUED
        _close(run)
    if to_label and dispatch:
        from modellab.behaviour.tasks import dispatch_classification_run

        send_on_commit(
            lambda: dispatch_classification_run.delay(run.pk),
            what="classification run",
            on_failure=lambda reason: fail_undispatched_run(run_id=run.pk, reason=reason),
        )
    record_audit(
        study=study,
        action="classification_started",
        actor=actor,
        run=run.pk,
        classifier=classifier,
        scheme=scheme,
        judge_model=judge_model.name if judge_model else None,
        models=[m.name for m in models],
        queued=to_label,
    )
    run.queued = to_label
    return run


def batch_size(run: ClassificationRun) -> int:
    if run.judge_model_id is None:
        return STRING_MATCH_BATCH
    return batch_size_for(run.judge_model, "per_type")


def queue_of(run: ClassificationRun) -> str:
    """Judge calls go to the judge model's queue; string matching runs on the default one."""
    return run.judge_model.queue if run.judge_model_id else LanguageModel.Queue.DEFAULT


@transaction.atomic
def mark_run_running(*, run_id: int) -> ClassificationRun:
    ClassificationRun.objects.filter(pk=run_id, status=ClassificationRun.Status.QUEUED).update(
        status=ClassificationRun.Status.RUNNING, started_at=timezone.now()
    )
    return ClassificationRun.objects.select_related("judge_model").get(pk=run_id)


@transaction.atomic
def plan_batches(*, run: ClassificationRun) -> list[str]:
    """Put the run's queued rows that no batch holds into batches; returns the batch ids."""
    ids = list(
        run.labels.select_for_update(skip_locked=True, of=("self",))
        .filter(status=ClassificationLabel.Status.PENDING, batch=None)
        .order_by("item__query__query_id", "item__model_id", "item__framing", "item__sample")
        .values_list("pk", flat=True)
    )
    size = batch_size(run)
    batches = []
    for start in range(0, len(ids), size):
        batch = uuid.uuid4()
        ClassificationLabel.objects.filter(pk__in=ids[start : start + size]).update(batch=batch)
        batches.append(str(batch))
    return batches


@transaction.atomic
def claim_batch(*, run_id: int, batch: str) -> list[ClassificationLabel]:
    """Mark a batch's unfinished rows as running (a redelivered batch claims them again)."""
    claimed = list(
        ClassificationLabel.objects.select_for_update()
        .filter(run_id=run_id, batch=batch, status__in=OPEN_LABEL)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ClassificationLabel.objects.filter(pk__in=claimed).update(
        status=ClassificationLabel.Status.RUNNING, attempts=F("attempts") + 1
    )
    return list(
        ClassificationLabel.objects.filter(pk__in=claimed)
        .select_related("item__query")
        .order_by("pk")
    )


def classifier_input(item: GenerationItem) -> ClassifierInput:
    """What the classifier reads: the prompt the model answered (scenario and query, as sent
    to it) and its response."""
    prompt = next(
        (
            m.get("content", "")
            for m in reversed(item.prompt or [])
            if isinstance(m, dict) and m.get("role") == "user"
        ),
        "",
    )
    return ClassifierInput(prompt=prompt or item.query.text, response=item.text)


@transaction.atomic
def record_labels(
    *, run_id: int, batch: str, label_ids: list[int], results: list[Classification], scheme: str
) -> int:
    """Store a batch's labels, exactly once: only rows still running in this batch are written
    (not rows cancelled meanwhile, nor rows a rerun has put in another batch).

    A label outside the run's scheme is stored as ``unparsed`` with what the classifier said
    kept in ``raw``, so a misbehaving classifier can never add a label of its own.
    Returns how many rows were written.
    """
    allowed = set(labels_of(scheme)) | {UNPARSED}
    rows = {
        row.pk: row
        for row in ClassificationLabel.objects.select_for_update().filter(
            pk__in=label_ids, run_id=run_id
        )
    }
    now = timezone.now()
    changed = []
    for pk, result in zip(label_ids, results, strict=True):
        row = rows.get(pk)
        running = row is not None and row.status == ClassificationLabel.Status.RUNNING
        if not running or str(row.batch) != str(batch):
            continue  # stored by a redelivered copy of this batch, cancelled, or requeued
        if result.label in allowed:
            row.label, row.raw = result.label, result.raw
        else:
            row.label, row.raw = UNPARSED, result.raw or result.label
        row.rationale = result.rationale
        row.attempts = max(result.attempts, 1)
        row.status = ClassificationLabel.Status.DONE
        row.error = ""
        row.finished_at = now
        changed.append(row)
    ClassificationLabel.objects.bulk_update(
        changed, ["label", "raw", "rationale", "attempts", "status", "error", "finished_at"]
    )
    return len(changed)


@transaction.atomic
def fail_labels(*, run_id: int, label_ids: list[int], error: str) -> None:
    """Give up on rows after the task's retries ran out (the judge never answered)."""
    rows = ClassificationLabel.objects.filter(pk__in=label_ids, run_id=run_id)
    rows.filter(status__in=OPEN_LABEL).update(
        status=ClassificationLabel.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


def _close(run: ClassificationRun) -> None:
    """Store the run's final counts and status (it has no open rows)."""
    counts = dict(
        run.labels.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    run.n_items = sum(counts.values())
    run.n_labelled = counts.get(ClassificationLabel.Status.DONE, 0)
    run.n_failed = counts.get(ClassificationLabel.Status.FAILED, 0)
    run.n_unparsed = run.labels.filter(
        status=ClassificationLabel.Status.DONE, label=UNPARSED
    ).count()
    cancelled = counts.get(ClassificationLabel.Status.CANCELLED, 0)
    if run.status != ClassificationRun.Status.CANCELLED:
        run.status = (
            ClassificationRun.Status.FAILED if run.n_failed else ClassificationRun.Status.DONE
        )
        run.error = (
            f"{run.n_failed} response(s) could not be classified; see each one's error. "
            "Start the same settings again to retry them."
            if run.n_failed
            else ""
        )
    elif not run.error and cancelled:
        run.error = f"cancelled; {cancelled} response(s) were not classified"
    run.finished_at = timezone.now()
    run.save(
        update_fields=[
            "status",
            "error",
            "n_items",
            "n_labelled",
            "n_failed",
            "n_unparsed",
            "finished_at",
        ]
    )


@transaction.atomic
def finish_run_if_complete(*, run_id: int) -> ClassificationRun:
    """Close the run once no row is open."""
    run = ClassificationRun.objects.select_for_update().get(pk=run_id)
    if run.status in FINISHED_RUN or run.labels.filter(status__in=OPEN_LABEL).exists():
        return run
    _close(run)
    return run


@transaction.atomic
def fail_undispatched_run(*, run_id: int, reason: str) -> None:
    """The broker refused the dispatch: the rows it was for fail with the reason, and the run
    closes unless an earlier dispatch is still working on it."""
    run = ClassificationRun.objects.select_for_update().get(pk=run_id)
    run.labels.filter(status=ClassificationLabel.Status.PENDING, batch=None).update(
        status=ClassificationLabel.Status.FAILED, error=reason[:2000], finished_at=timezone.now()
    )
    if run.status in OPEN_RUN and not run.labels.filter(status__in=OPEN_LABEL).exists():
        _close(run)
        run.error = reason
        run.save(update_fields=["error"])


@transaction.atomic
def cancel_run(*, run: ClassificationRun, actor: AbstractBaseUser | None) -> ClassificationRun:
    """Stop a run: rows not labelled yet are cancelled; labels already stored are kept."""
    if actor is not None:
        access.require(actor, Action.EDIT, run.study)
    run = ClassificationRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in OPEN_RUN:
        return run
    run.labels.filter(status__in=OPEN_LABEL).update(
        status=ClassificationLabel.Status.CANCELLED, finished_at=timezone.now()
    )
    run.status = ClassificationRun.Status.CANCELLED
    _close(run)
    record_audit(study=run.study, action="classification_cancelled", actor=actor, run=run.pk)
    return run


def run_is_cancelled(run_id: int) -> bool:
    return ClassificationRun.objects.filter(
        pk=run_id, status=ClassificationRun.Status.CANCELLED
    ).exists()
