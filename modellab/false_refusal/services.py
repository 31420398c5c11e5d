"""Writes of the false-refusal benchmark: importing prompt sets, runs, responses and labels."""

from __future__ import annotations

import hashlib
import json
import logging
import random
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
    check_model_host,
    model_params,
)
from studies.models import GenerationJob, LanguageModel

logger = logging.getLogger(__name__)

OPEN_ITEM_STATUSES = (FalseRefusalItem.Status.PENDING, FalseRefusalItem.Status.RUNNING)
FINISHED_RUN_STATUSES = (FalseRefusalRun.Status.DONE, FalseRefusalRun.Status.FAILED)
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


def plan_generation(run: FalseRefusalRun) -> list[tuple[LanguageModel, list[int]]]:
    """Pending items in batches, each batch one model's, sized for its backend."""
    batches = []
    for model in run.language_models.order_by("name"):
        ids = list(
            run.items.filter(model=model, status=FalseRefusalItem.Status.PENDING)
            .order_by("prompt__position")
            .values_list("pk", flat=True)
        )
        size = batch_size_for(model, GenerationJob.Mode.PER_TYPE)
        batches += [(model, ids[i : i + size]) for i in range(0, len(ids), size)]
    return batches


def plan_classification(run: FalseRefusalRun, size: int = 64) -> list[list[int]]:
    """Generated, unlabelled items in batches (a sweep after a lost classify task)."""
    ids = list(
        run.items.filter(status=FalseRefusalItem.Status.GENERATED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return [ids[i : i + size] for i in range(0, len(ids), size)]


@transaction.atomic
def claim_generation(*, run_id: int, item_ids: list[int]) -> list[FalseRefusalItem]:
    """Mark a batch's open items running; a redelivered batch claims only what is still open."""
    claimed = list(
        FalseRefusalItem.objects.filter(
            pk__in=item_ids, run_id=run_id, status__in=OPEN_ITEM_STATUSES
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
    *, items: list[FalseRefusalItem], requests: list[ChatRequest], outcomes: list[ChatOutcome]
) -> GenerationResult:
    """Store each response once. An error a retry may fix (or an empty reply) goes back to
    pending until MAX_ATTEMPTS; then an error fails the item and an empty reply is kept as the
    response (a model that keeps saying nothing has not complied)."""
    live = {
        i.pk: i
        for i in FalseRefusalItem.objects.select_for_update().filter(
            pk__in=[i.pk for i in items], status=FalseRefusalItem.Status.RUNNING
        )
    }
    now = timezone.now()
    generated, retry, failed = [], [], 0
    changed = []
    for claimed, request, outcome in zip(items, requests, outcomes, strict=True):
        item = live.get(claimed.pk)
        if item is None:
            continue  # stored by a redelivered copy of this batch
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
def fail_items(*, item_ids: list[int], error: str) -> None:
    """Give up on items after the task's own retries ran out (e.g. the endpoint is down)."""
    FalseRefusalItem.objects.filter(pk__in=item_ids, status__in=OPEN_ITEM_STATUSES).update(
        status=FalseRefusalItem.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


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


def items_to_classify(*, run_id: int, item_ids: list[int]) -> list[FalseRefusalItem]:
    return list(
        FalseRefusalItem.objects.filter(
            pk__in=item_ids, run_id=run_id, status=FalseRefusalItem.Status.GENERATED
        )
        .select_related("prompt")
        .order_by("pk")
    )


def classify_items(run: FalseRefusalRun, items: list[FalseRefusalItem]) -> list:
    inputs = [ClassifierInput(prompt=i.prompt.text, response=i.response) for i in items]
    return classifier_for(run).classify(inputs)


@transaction.atomic
def record_labels(*, items: list[FalseRefusalItem], classifications: list) -> int:
    """Store each label once (a redelivered batch finds its items done and skips them)."""
    open_ids = set(
        FalseRefusalItem.objects.select_for_update()
        .filter(pk__in=[i.pk for i in items], status=FalseRefusalItem.Status.GENERATED)
        .values_list("pk", flat=True)
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
def label_unparsed(*, item_ids: list[int], error: str) -> None:
    """The classifier itself kept failing: the items are labelled unparsed, reason kept."""
    FalseRefusalItem.objects.filter(
        pk__in=item_ids, status=FalseRefusalItem.Status.GENERATED
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


@transaction.atomic
def retry_failed(*, run: FalseRefusalRun, actor: AbstractBaseUser) -> FalseRefusalRun:
    """Ask again for the responses a finished run could not get (their attempts start afresh);
    the answers and labels it has are kept. The models must still be usable by ``actor``."""
    run = FalseRefusalRun.objects.select_for_update().get(pk=run.pk)
    if run.status != FalseRefusalRun.Status.FAILED:
        raise ValueError("only a run that finished with failures can be retried")
    failed = run.items.filter(status=FalseRefusalItem.Status.FAILED)
    for model in LanguageModel.objects.filter(pk__in=failed.values("model_id")):
        if not access.can_use_model(actor, model):
            raise PermissionDenied(f"model '{model.name}' is not shared with you")
        check_model_host(model)
    failed.update(status=FalseRefusalItem.Status.PENDING, attempts=0, error="", finished_at=None)
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
