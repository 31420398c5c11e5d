"""Writes of the false-refusal benchmark: importing prompt sets, runs, responses and labels.

Exactly once: each dispatch puts the pending items no batch holds into generation batches (a
UUID per batch on the rows), and the items a batch answered are labelled under that batch's id
(a dispatch that finds answers not labelled gives them a new one). A batch task claims and
writes only its own items still open, so a redelivered batch redoes its items, and a batch
overtaken by a cancel, or by a cancel and a resume, stores nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import F
from django.forms import ValidationError as FormValidationError
from django.utils import timezone

from config.dispatch import send_on_commit
from modellab.classifiers import CLASSIFIERS, ClassifierInput, build_classifier
from modellab.classifiers.judge import default_judge_prompt, validate_judge_prompt
from modellab.classifiers.labels import THREE_WAY, UNPARSED
from modellab.false_refusal.prompt_file import PromptSetError, clean_mapping, parse_prompts
from modellab.models import FalseRefusalItem, FalseRefusalPrompt, FalseRefusalRun, PromptSet
from modellab.table_file import Record, Table, TableFileError, read_upload
from studies import access
from studies.generation import prompts as generation_prompts
from studies.generation.backends import ChatOutcome, ChatRequest
from studies.generation.services import (
    MAX_ATTEMPTS,
    batch_size_for,
    check_chat_model,
    check_model_host,
    model_params,
)
from studies.models import GenerationJob, LanguageModel

logger = logging.getLogger(__name__)

OPEN_ITEM_STATUSES = (FalseRefusalItem.Status.PENDING, FalseRefusalItem.Status.RUNNING)
OPEN_RUN_STATUSES = (FalseRefusalRun.Status.QUEUED, FalseRefusalRun.Status.RUNNING)
FINISHED_RUN_STATUSES = (
    FalseRefusalRun.Status.DONE,
    FalseRefusalRun.Status.FAILED,
    FalseRefusalRun.Status.CANCELLED,
)
# More prompts than PHTest (3,260) times a few models is fine; a typo like 10**6 is not.
MAX_ITEMS_PER_RUN = 100_000


# --- Prompt sets --------------------------------------------------------------------------


def _check_name(name: str, actor: AbstractBaseUser) -> str:
    name = (name or "").strip()
    try:
        validate_slug(name)
    except FormValidationError:
        raise PromptSetError(
            [f"the name {name!r} must be letters, digits, hyphens or underscores"]
        ) from None
    if len(name) > 100:
        raise PromptSetError(["the name must be at most 100 characters"])
    if PromptSet.objects.filter(owner=actor, name=name).exists():
        raise PromptSetError([f"you already have a prompt set named {name!r}"])
    return name


@transaction.atomic
def _create_set(
    *, name: str, table: Table, mapping: dict, actor, source_name: str, sha256: str, where: str
) -> PromptSet:
    name = _check_name(name, actor)
    mapping = clean_mapping(mapping)
    parsed = parse_prompts(table, mapping, where=where)
    prompt_set = PromptSet.objects.create(
        name=name,
        owner=actor,
        source_name=source_name[:255],
        sha256=sha256,
        mapping=mapping,
        row_count=len(parsed),
    )
    FalseRefusalPrompt.objects.bulk_create(
        [
            FalseRefusalPrompt(
                prompt_set=prompt_set,
                position=p.position,
                external_id=p.external_id,
                text=p.text,
                label=p.label,
                category=p.category,
                line=p.line,
            )
            for p in parsed
        ],
        batch_size=1000,
    )
    return prompt_set


def import_prompt_set(
    *, name: str, data: bytes, filename: str, mapping: dict, actor: AbstractBaseUser
) -> PromptSet:
    """A prompt set from a CSV or JSONL file; PromptSetError (a ValueError) names each bad
    line and nothing is stored. Provenance: file name, its sha256, the mapping, the rows."""
    try:
        table = read_upload(data, filename).as_text()
    except TableFileError as exc:
        raise PromptSetError(exc.shown()) from None
    return _create_set(
        name=name,
        table=table,
        mapping=mapping,
        actor=actor,
        source_name=filename,
        sha256=hashlib.sha256(data).hexdigest(),
        where="line",
    )


def import_prompt_rows(
    *, name: str, rows: list, mapping: dict, actor: AbstractBaseUser, source_name: str = "API"
) -> PromptSet:
    """A prompt set from rows sent as JSON objects (the API); problems name the row (from 1).
    The sha256 is of the rows as canonical JSON."""
    if not isinstance(rows, list) or not rows:
        raise PromptSetError(["send at least one row"])
    problems = [
        f"row {i}: must be an object" for i, r in enumerate(rows, 1) if not isinstance(r, dict)
    ]
    if problems:
        raise PromptSetError(problems)
    columns = tuple(dict.fromkeys(str(k) for row in rows for k in row))
    table = Table(
        "json",
        columns,
        tuple(
            Record(i, {c: "" if row.get(c) is None else str(row.get(c)) for c in columns})
            for i, row in enumerate(rows, 1)
        ),
    )
    canonical = json.dumps(rows, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return _create_set(
        name=name,
        table=table,
        mapping=mapping,
        actor=actor,
        source_name=source_name,
        sha256=hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest(),
        where="row",
    )


# --- Runs ---------------------------------------------------------------------------------


def _chosen_prompts(
    prompt_set: PromptSet, limit: int | None, sample: int | None, seed: int
) -> list[int]:
    ids = list(prompt_set.prompts.order_by("position").values_list("pk", flat=True))
    if limit is not None and sample is not None:
        raise ValueError("give either a limit (the first N prompts) or a sample, not both")
    for what, value in (("limit", limit), ("sample", sample)):
        if value is not None and value < 1:
            raise ValueError(f"{what} must be at least 1")
    if limit is not None:
        return ids[:limit]
    if sample is not None and sample < len(ids):
        return sorted(random.Random(seed).sample(ids, sample))
    return ids


@transaction.atomic
def start_false_refusal_run(
    *,
    prompt_set: PromptSet,
    models: Iterable[LanguageModel],
    classifier: str,
    actor: AbstractBaseUser,
    judge_model: LanguageModel | None = None,
    judge_prompt: str | None = None,
    limit: int | None = None,
    sample: int | None = None,
    seed: int = 0,
    dispatch: bool = True,
) -> FalseRefusalRun:
    """One run: every chosen model answers every chosen prompt, then each answer is labelled.

    The actor must own the prompt set (else ValueError, as if it did not exist) and be allowed
    to use every model and the judge (PermissionDenied). Raises QueueUnavailable (after the
    commit) when the broker is down; the run is then failed with the reason.
    """
    if not (actor.is_superuser or prompt_set.owner_id == actor.pk):
        raise ValueError("no such prompt set")
    models = list(dict.fromkeys(models))
    if not models:
        raise ValueError("choose at least one model")
    if classifier not in CLASSIFIERS:
        raise ValueError(
            f"unknown classifier {classifier!r}; choose one of {', '.join(CLASSIFIERS)}"
        )
    if classifier == "llm_judge" and judge_model is None:
        raise ValueError("llm_judge needs a judge model")
    if classifier != "llm_judge" and (judge_model is not None or judge_prompt):
        raise ValueError("a judge model and judging prompt are only used by llm_judge")
    if classifier == "llm_judge":
        judge_prompt = validate_judge_prompt(
            judge_prompt
            if judge_prompt and judge_prompt.strip()
            else default_judge_prompt(THREE_WAY)
        )
    for model in [*models, *([judge_model] if judge_model else [])]:
        if not access.can_use_model(actor, model):
            raise PermissionDenied(f"model '{model.name}' is not shared with you")
        check_model_host(model)
        check_chat_model(model)
    prompt_ids = _chosen_prompts(prompt_set, limit, sample, seed)
    if not prompt_ids:
        raise ValueError("the prompt set has no prompts")
    if len(prompt_ids) * len(models) > MAX_ITEMS_PER_RUN:
        raise ValueError(
            f"{len(prompt_ids)} prompts × {len(models)} models is more than "
            f"{MAX_ITEMS_PER_RUN:,} responses; use a limit or a sample"
        )
    run = FalseRefusalRun.objects.create(
        prompt_set=prompt_set,
        classifier=classifier,
        judge_model=judge_model,
        judge_prompt=judge_prompt or "",
        limit=limit,
        sample=sample,
        seed=seed,
        params={
            "models": {m.name: model_params(m) for m in models},
            "judge": model_params(judge_model) if judge_model else None,
            "scheme": THREE_WAY,
            "prompts": len(prompt_ids),
        },
        created_by=actor,
    )
    run.language_models.set(models)
    FalseRefusalItem.objects.bulk_create(
        [FalseRefusalItem(run=run, model=m, prompt_id=p) for m in models for p in prompt_ids],
        batch_size=2000,
        ignore_conflicts=True,
    )
    if dispatch:
        from modellab.false_refusal.tasks import dispatch_false_refusal_run

        send_on_commit(
            lambda: dispatch_false_refusal_run.delay(run.pk),
            what="false-refusal run",
            on_failure=lambda reason: fail_undispatched_run(run_id=run.pk, reason=reason),
        )
    return run


@transaction.atomic
def fail_undispatched_run(*, run_id: int, reason: str) -> None:
    run = FalseRefusalRun.objects.select_for_update().get(pk=run_id)
    if run.status != FalseRefusalRun.Status.QUEUED:
        return
    now = timezone.now()
    run.items.filter(status__in=OPEN_ITEM_STATUSES).update(
        status=FalseRefusalItem.Status.FAILED, error=reason[:2000], finished_at=now
    )
    run.status, run.error, run.finished_at = FalseRefusalRun.Status.FAILED, reason, now
    run.save(update_fields=["status", "error", "finished_at"])


@transaction.atomic
def mark_run_running(*, run_id: int) -> FalseRefusalRun:
    FalseRefusalRun.objects.filter(pk=run_id, status=FalseRefusalRun.Status.QUEUED).update(
        status=FalseRefusalRun.Status.RUNNING, started_at=timezone.now()
    )
    return FalseRefusalRun.objects.get(pk=run_id)


def _batches(ids: list[int], size: int) -> list[tuple[str, list[int]]]:
    """Split ``ids`` into batches of ``size`` and mark each item with its batch's id."""
    batches = []
    for start in range(0, len(ids), size):
        batch, item_ids = uuid.uuid4(), ids[start : start + size]
        FalseRefusalItem.objects.filter(pk__in=item_ids).update(batch=batch)
        batches.append((str(batch), item_ids))
    return batches


@transaction.atomic
def plan_generation(run: FalseRefusalRun) -> list[tuple[LanguageModel, str, list[int]]]:
    """Pending items no batch holds, in batches (model, batch id, item ids), each batch one
    model's, sized for its backend."""
    batches = []
    for model in run.language_models.order_by("name"):
        ids = list(
            run.items.select_for_update(skip_locked=True, of=("self",))
            .filter(model=model, status=FalseRefusalItem.Status.PENDING, batch=None)
            .order_by("prompt__position")
            .values_list("pk", flat=True)
        )
        size = batch_size_for(model, GenerationJob.Mode.PER_TYPE)
        batches += [(model, batch, item_ids) for batch, item_ids in _batches(ids, size)]
    return batches


@transaction.atomic
def plan_classification(run: FalseRefusalRun, size: int = 64) -> list[tuple[str, list[int]]]:
    """Generated, unlabelled items in new batches (a sweep after a lost classify task, or a
    resume after a cancel); a classify task still queued for them then labels nothing."""
    ids = list(
        run.items.select_for_update(skip_locked=True)
        .filter(status=FalseRefusalItem.Status.GENERATED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return _batches(ids, size)


def _in_batch(items, batch: str | None):
    # None: a task sent before items carried their batch; it takes any open item.
    return items if batch is None else items.filter(batch=batch)


@transaction.atomic
def claim_generation(
    *, run_id: int, item_ids: list[int], batch: str | None = None
) -> list[FalseRefusalItem]:
    """Mark a batch's open items running; a redelivered batch claims only what is still open
    and still its own (not items cancelled or put in another batch since)."""
    claimed = list(
        _in_batch(
            FalseRefusalItem.objects.filter(
                pk__in=item_ids, run_id=run_id, status__in=OPEN_ITEM_STATUSES
            ),
            batch,
        )
        .order_by("pk")
        .select_for_update()
        .values_list("pk", flat=True)
    )
    FalseRefusalItem.objects.filter(pk__in=claimed).update(
        status=FalseRefusalItem.Status.RUNNING, attempts=F("attempts") + 1
    )
    return list(
        FalseRefusalItem.objects.filter(pk__in=claimed)
        .select_related("prompt", "model")
        .order_by("pk")
    )


def chat_request(item: FalseRefusalItem) -> ChatRequest:
    """The prompt as a plain user message, with the model's own parameters."""
    model = item.model
    return ChatRequest(
        messages=generation_prompts.natural_messages(item.prompt.text, None),
        max_tokens=model.max_tokens,
        temperature=model.temperature,
        seed=model.seed,
    )


@dataclass(frozen=True)
class GenerationResult:
    generated: list[int]
    failed: int
    retry_ids: list[int]


@transaction.atomic
def record_generation(
    *,
    items: list[FalseRefusalItem],
    requests: list[ChatRequest],
    outcomes: list[ChatOutcome],
    batch: str | None = None,
) -> GenerationResult:
    """Store each response once, only onto items still running in this batch. An error a retry
    may fix (or an empty reply) goes back to pending until MAX_ATTEMPTS; then an error fails
    the item and an empty reply is kept as the response (a model that keeps saying nothing has
    not complied)."""
    live = {
        i.pk: i
        for i in _in_batch(
            FalseRefusalItem.objects.select_for_update().filter(
                pk__in=[i.pk for i in items], status=FalseRefusalItem.Status.RUNNING
            ),
            batch,
        )
    }
    now = timezone.now()
    generated, retry, failed = [], [], 0
    changed = []
    for claimed, request, outcome in zip(items, requests, outcomes, strict=True):
        item = live.get(claimed.pk)
        if item is None:
            continue  # stored by a redelivered copy of this batch, cancelled, or requeued
        item.raw_output = outcome.text or ""
        item.request = {
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        item.finished_at = now
        text = (outcome.text or "").strip() if outcome.ok else None
        last_try = item.attempts >= MAX_ATTEMPTS
        if text or (text == "" and last_try):
            item.status = FalseRefusalItem.Status.GENERATED
            item.response, item.error = text, ""
            item.prompt_tokens = outcome.prompt_tokens
            item.completion_tokens = outcome.completion_tokens
            item.latency_ms = outcome.latency_ms
            generated.append(item.pk)
        else:
            item.error = outcome.error or "the model returned an empty reply"
            retryable = outcome.retryable if not outcome.ok else True
            if retryable and not last_try:
                item.status = FalseRefusalItem.Status.PENDING
                retry.append(item.pk)
            else:
                item.status = FalseRefusalItem.Status.FAILED
                failed += 1
        changed.append(item)
    FalseRefusalItem.objects.bulk_update(
        changed,
        [
            "status",
            "response",
            "raw_output",
            "error",
            "request",
            "prompt_tokens",
            "completion_tokens",
            "latency_ms",
            "finished_at",
        ],
    )
    return GenerationResult(generated=generated, failed=failed, retry_ids=retry)


@transaction.atomic
def fail_items(*, item_ids: list[int], error: str, batch: str | None = None) -> None:
    """Give up on items after the task's own retries ran out (e.g. the endpoint is down)."""
    _in_batch(
        FalseRefusalItem.objects.filter(pk__in=item_ids, status__in=OPEN_ITEM_STATUSES), batch
    ).update(status=FalseRefusalItem.Status.FAILED, error=error[:2000], finished_at=timezone.now())


def classifier_for(run: FalseRefusalRun):
    """The run's classifier (three-way), built as the classifiers package defines it."""
    if run.classifier == "llm_judge":
        return build_classifier(
            run.classifier,
            scheme=THREE_WAY,
            judge_model=run.judge_model,
            judge_prompt=run.judge_prompt or None,
            max_attempts=MAX_ATTEMPTS,
        )
    return build_classifier(run.classifier, scheme=THREE_WAY)


def classification_queue(run: FalseRefusalRun) -> str:
    """The judge's queue for llm_judge; string matching runs on the default queue."""
    return run.judge_model.queue if run.judge_model else LanguageModel.Queue.DEFAULT


def items_to_classify(
    *, run_id: int, item_ids: list[int], batch: str | None = None
) -> list[FalseRefusalItem]:
    return list(
        _in_batch(
            FalseRefusalItem.objects.filter(
                pk__in=item_ids, run_id=run_id, status=FalseRefusalItem.Status.GENERATED
            ),
            batch,
        )
        .select_related("prompt")
        .order_by("pk")
    )


def classify_items(run: FalseRefusalRun, items: list[FalseRefusalItem]) -> list:
    inputs = [ClassifierInput(prompt=i.prompt.text, response=i.response) for i in items]
    return classifier_for(run).classify(inputs)


@transaction.atomic
def record_labels(
    *, items: list[FalseRefusalItem], classifications: list, batch: str | None = None
) -> int:
    """Store each label once, only onto items still waiting for it in this batch (a redelivered
    batch finds its items done; a cancel or a resume took the others out of the batch)."""
    open_ids = set(
        _in_batch(
            FalseRefusalItem.objects.select_for_update().filter(
                pk__in=[i.pk for i in items], status=FalseRefusalItem.Status.GENERATED
            ),
            batch,
        ).values_list("pk", flat=True)
    )
    now = timezone.now()
    changed = []
    for item, result in zip(items, classifications, strict=True):
        if item.pk not in open_ids:
            continue
        item.status = FalseRefusalItem.Status.DONE
        item.label = result.label
        item.rationale = result.rationale
        item.classifier_raw = result.raw
        item.classified_at = now
        changed.append(item)
    FalseRefusalItem.objects.bulk_update(
        changed, ["status", "label", "rationale", "classifier_raw", "classified_at"]
    )
    return len(changed)


@transaction.atomic
def label_unparsed(*, item_ids: list[int], error: str, batch: str | None = None) -> None:
    """The classifier itself kept failing: the items are labelled unparsed, reason kept."""
    _in_batch(
        FalseRefusalItem.objects.filter(pk__in=item_ids, status=FalseRefusalItem.Status.GENERATED),
        batch,
    ).update(
        status=FalseRefusalItem.Status.DONE,
        label=UNPARSED,
        rationale="the classifier failed",
        classifier_raw=error[:2000],
        classified_at=timezone.now(),
    )


@transaction.atomic
def finish_run_if_complete(*, run_id: int) -> FalseRefusalRun:
    """Close the run once every item is labelled or failed."""
    run = FalseRefusalRun.objects.select_for_update().get(pk=run_id)
    if run.status in FINISHED_RUN_STATUSES:
        return run
    unfinished = (*OPEN_ITEM_STATUSES, FalseRefusalItem.Status.GENERATED)
    if run.items.filter(status__in=unfinished).exists():
        return run
    failed = run.items.filter(status=FalseRefusalItem.Status.FAILED).count()
    run.status = FalseRefusalRun.Status.FAILED if failed else FalseRefusalRun.Status.DONE
    run.error = (
        f"{failed} response(s) could not be generated; see each item's error" if failed else ""
    )
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])
    return run


def _check_owner(run: FalseRefusalRun, actor: AbstractBaseUser) -> None:
    if not (actor.is_superuser or run.created_by_id == actor.pk):
        raise PermissionDenied("only the researcher who started the run may change it")


@transaction.atomic
def retry_failed(*, run: FalseRefusalRun, actor: AbstractBaseUser) -> FalseRefusalRun:
    """Resume a finished run: ask again for the responses it could not get (failed) or did not
    ask for (cancelled), their attempts afresh, and label the answers it has not labelled; the
    answers and labels it has are kept. Only its owner may; the models (and the judge, when
    answers wait for labels) must still be usable by ``actor``."""
    _check_owner(run, actor)
    runs = FalseRefusalRun.objects.select_for_update(of=("self",)).select_related("judge_model")
    run = runs.get(pk=run.pk)
    if run.status not in (FalseRefusalRun.Status.FAILED, FalseRefusalRun.Status.CANCELLED):
        raise ValueError("only a run that finished with failures or was cancelled can be resumed")
    missing = run.items.filter(
        status__in=(FalseRefusalItem.Status.FAILED, FalseRefusalItem.Status.CANCELLED)
    )
    models = list(LanguageModel.objects.filter(pk__in=missing.values("model_id")))
    unlabelled = run.items.filter(status=FalseRefusalItem.Status.GENERATED).exists()
    if run.judge_model is not None and (missing.exists() or unlabelled):
        models.append(run.judge_model)
    for model in models:
        if not access.can_use_model(actor, model):
            raise PermissionDenied(f"model '{model.name}' is not shared with you")
        check_model_host(model)
        check_chat_model(model)
    missing.update(
        status=FalseRefusalItem.Status.PENDING, attempts=0, error="", finished_at=None, batch=None
    )
    run.status, run.error, run.finished_at = FalseRefusalRun.Status.QUEUED, "", None
    run.save(update_fields=["status", "error", "finished_at"])
    from modellab.false_refusal.tasks import dispatch_false_refusal_run

    send_on_commit(
        lambda: dispatch_false_refusal_run.delay(run.pk),
        what="false-refusal run",
        on_failure=lambda reason: fail_undispatched_run(run_id=run.pk, reason=reason),
    )
    return run


@transaction.atomic
def cancel_run(*, run: FalseRefusalRun, actor: AbstractBaseUser) -> FalseRefusalRun:
    """Stop a run (queued, running, or stuck because its messages were lost): the prompts not
    answered yet are cancelled, answers not labelled yet stay unlabelled, and answers and
    labels stored are kept. Batches already queued store nothing more. Only the researcher who
    started it may (PermissionDenied); a finished run is returned as it is. Resume it with
    ``retry_failed``."""
    _check_owner(run, actor)
    run = FalseRefusalRun.objects.select_for_update().get(pk=run.pk)
    if run.status not in OPEN_RUN_STATUSES:
        return run
    now = timezone.now()
    cancelled = run.items.filter(status__in=OPEN_ITEM_STATUSES).update(
        status=FalseRefusalItem.Status.CANCELLED, finished_at=now, batch=None
    )
    # Answers waiting for their label leave their batch: a classify task still queued skips them.
    unlabelled = run.items.filter(status=FalseRefusalItem.Status.GENERATED).update(batch=None)
    parts = [f"{cancelled} prompt(s) were not answered"]
    if unlabelled:
        parts.append(f"{unlabelled} answer(s) were not labelled")
    run.status = FalseRefusalRun.Status.CANCELLED
    run.error = f"cancelled; {', '.join(parts)}. Resume the run to do what is missing."
    run.finished_at = now
    run.save(update_fields=["status", "error", "finished_at"])
    return run


def run_is_cancelled(run_id: int) -> bool:
    return FalseRefusalRun.objects.filter(
        pk=run_id, status=FalseRefusalRun.Status.CANCELLED
    ).exists()


@transaction.atomic
def fail_unstarted_runs(*, now=None) -> int:
    """Fail runs no worker took within JOB_QUEUED_LIMIT_MINUTES (lost message, no worker on
    the default queue), so their page stops waiting and says why (a beat task calls this)."""
    limit = django_settings.JOB_QUEUED_LIMIT_MINUTES
    before = (now or timezone.now()) - timedelta(minutes=limit)
    reason = (
        f"not taken by a worker within {limit} minutes (is a worker running on the default "
        "queue?); start a new run."
    )
    stuck = FalseRefusalRun.objects.select_for_update(skip_locked=True).filter(
        status=FalseRefusalRun.Status.QUEUED, created_at__lt=before, started_at__isnull=True
    )
    count = 0
    for run in stuck:
        fail_undispatched_run(run_id=run.pk, reason=reason)
        count += 1
    if count:
        logger.warning("failed %d false-refusal run(s) no worker took", count)
    return count
