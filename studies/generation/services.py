"""Writes of response generation: the model registry, jobs, their items and their results."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from config.dispatch import send_on_commit
from studies import access
from studies.domain import RESPONSE_TYPES
from studies.errors import StudyStateError
from studies.generation import prompts
from studies.generation.backends import ChatOutcome, ChatRequest, validate_backend_settings
from studies.generation.embeddings import validate_settings as validate_embedding_settings
from studies.generation.hosts import check_host_allowed
from studies.models import (
    AuditEvent,
    GenerationItem,
    GenerationJob,
    LanguageModel,
    Query,
    ResponseVariant,
    Scenario,
    Study,
)
from studies.services import EDITABLE_STATUSES, record_audit

logger = logging.getLogger(__name__)

#: Tries per item (first call + retries) before malformed output or errors mark it failed.
MAX_ATTEMPTS = 3

# Texts are generated while the design may still change (studies.domain's editable group).
GENERATABLE_STATUSES = EDITABLE_STATUSES
OPEN_ITEM_STATUSES = (GenerationItem.Status.PENDING, GenerationItem.Status.RUNNING)


def model_endpoint(backend_settings: dict) -> tuple[str | None, str | None]:
    """Where a model's requests go and which key they carry: (base_url, api_key_env)."""
    return backend_settings.get("base_url"), backend_settings.get("api_key_env")


def check_model_host(model: LanguageModel) -> None:
    """Refuse a model whose requests would go to a host not in MODEL_HOSTS_ALLOWED."""
    base_url = model.backend_settings.get("base_url")
    if model.backend == LanguageModel.Backend.OPENAI and base_url:
        check_host_allowed(base_url)


def check_chat_model(model: LanguageModel) -> None:
    """Refuse an embedding model where a model must write text (generation, judges, targets)."""
    if model.kind == LanguageModel.Kind.EMBEDDING:
        raise ValueError(f"'{model.name}' is an embedding model; choose a chat model")


@transaction.atomic
def register_model(
    *,
    name: str,
    backend: str,
    backend_settings: dict,
    kind: str | None = None,
    queue: str = LanguageModel.Queue.DEFAULT,
    temperature: float = 0.7,
    max_tokens: int = 512,
    seed: int | None = None,
    shared: bool | None = None,
    actor: AbstractBaseUser | None = None,
) -> LanguageModel:
    """Create or update a model; settings are validated so a bad one never reaches a worker.

    A new model belongs to ``actor``. Only its owner or a superuser may change it, and where
    its requests go (``base_url``, ``api_key_env``) only a superuser, with an audit row:
    otherwise anyone could send another researcher's API key to a host of their choosing.
    ``kind`` (chat or embedding) decides which settings are valid; left out, a new model is a
    chat model and a registered one keeps its kind.
    """
    if kind is None:
        # Not given: a new model writes text, a registered one keeps its kind.
        existing = LanguageModel.objects.filter(name=name).values_list("kind", flat=True).first()
        kind = existing or LanguageModel.Kind.CHAT
    if kind not in LanguageModel.Kind.values:
        raise ValueError(f"kind must be one of {', '.join(LanguageModel.Kind.values)}, not {kind}")
    if kind == LanguageModel.Kind.EMBEDDING:
        normalised = validate_embedding_settings(backend, backend_settings)
    else:
        normalised = validate_backend_settings(backend, backend_settings)
    if queue not in LanguageModel.Queue.values:
        raise ValueError(f"queue must be one of {', '.join(LanguageModel.Queue.values)}")
    if not 0 <= temperature <= 2:
        raise ValueError("temperature must be between 0 and 2")
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    if backend == LanguageModel.Backend.OPENAI:
        check_host_allowed(normalised["base_url"])
    model = LanguageModel.objects.select_for_update().filter(name=name).first()
    old_endpoint = None
    if model is None:
        model = LanguageModel(name=name, owner=actor)
    else:
        if actor is not None and not access.can_change_model(actor, model):
            raise PermissionDenied(f"only the owner of model '{name}' or a superuser may change it")
        old_endpoint = model_endpoint(model.backend_settings)
        if old_endpoint != model_endpoint(normalised) and not (
            actor is None or access.can_change_model_endpoint(actor)
        ):
            raise PermissionDenied(
                f"changing where model '{name}' sends its requests (base_url, api_key_env) "
                "is for superusers only"
            )
    model.kind = kind
    model.backend = backend
    model.backend_settings = normalised
    model.queue = queue
    model.temperature = temperature
    model.max_tokens = max_tokens
    model.seed = seed
    if shared is not None:
        model.shared = shared
    if model.owner is None and actor is not None:
        model.owner = actor
    model.save()
    new_endpoint = model_endpoint(normalised)
    if old_endpoint is not None and old_endpoint != new_endpoint:
        AuditEvent.objects.create(
            study=None,
            model=model,
            actor=actor,
            action="model_endpoint_changed",
            detail={
                "model": model.name,
                "old": {"base_url": old_endpoint[0], "api_key_env": old_endpoint[1]},
                "new": {"base_url": new_endpoint[0], "api_key_env": new_endpoint[1]},
            },
        )
    return model


def model_params(model: LanguageModel) -> dict:
    return {
        "backend": model.backend,
        "queue": model.queue,
        "temperature": model.temperature,
        "max_tokens": model.max_tokens,
        "seed": model.seed,
        "settings": model.backend_settings,
    }


def _wanted_items(study: Study, job: GenerationJob) -> list[GenerationItem]:
    queries = list(study.queries.order_by("query_id"))
    items = []
    for query, sample in itertools.product(queries, range(job.samples)):
        if job.kind == GenerationJob.Kind.STRATEGY:
            keys = [(t, GenerationItem.Framing.STRATEGY) for t in RESPONSE_TYPES]
        else:
            keys = [
                ("", GenerationItem.Framing.QUERY_ONLY),
                ("", GenerationItem.Framing.BENIGN),
                ("", GenerationItem.Framing.MALICIOUS),
            ]
        for response_type, framing in keys:
            items.append(
                GenerationItem(
                    study=study,
                    query=query,
                    model=job.model,
                    response_type=response_type,
                    framing=framing,
                    sample=sample,
                    job=job,
                )
            )
    return items


@transaction.atomic
def start_generation_job(
    *,
    study: Study,
    model: LanguageModel,
    kind: str = GenerationJob.Kind.STRATEGY,
    mode: str = GenerationJob.Mode.PER_TYPE,
    samples: int = 1,
    instructions: dict[str, str] | None = None,
    actor: AbstractBaseUser | None = None,
    dispatch: bool = True,
) -> GenerationJob:
    """Create a job for every text not written yet (a rerun fills only what is missing).

    Raises QueueUnavailable (after the commit) when the broker is down: the job is then
    failed with the reason and the study gets its status back.
    """
    study = Study.objects.select_for_update().get(pk=study.pk)
    # Where the study goes back to if the job cannot be dispatched (not "generating": the
    # job that made it so may be this one).
    status_before = Study.Status.REVIEW if study.status == Study.Status.GENERATING else study.status
    if study.status not in GENERATABLE_STATUSES:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; responses can only be generated before launch"
        )
    if not study.queries.exists():
        raise StudyStateError(f"study '{study.slug}' has no queries to generate responses for")
    if actor is not None and not access.can_use_model(actor, model):
        raise PermissionDenied(f"model '{model.name}' is not shared with you")
    check_model_host(model)
    check_chat_model(model)
    if not 1 <= samples <= 100:
        raise ValueError("samples must be between 1 and 100")
    if kind not in GenerationJob.Kind.values or mode not in GenerationJob.Mode.values:
        raise ValueError(f"unknown kind {kind!r} or mode {mode!r}")
    job = GenerationJob.objects.create(
        study=study,
        model=model,
        kind=kind,
        mode=mode if kind == GenerationJob.Kind.STRATEGY else GenerationJob.Mode.PER_TYPE,
        samples=samples,
        instructions=prompts.instructions_with_defaults(instructions),
        params=model_params(model),
        created_by=actor,
    )
    GenerationItem.objects.bulk_create(_wanted_items(study, job), ignore_conflicts=True)
    # Items written earlier stay as they are; anything unfinished joins this job afresh.
    strategy = GenerationItem.Framing.STRATEGY
    same_kind = GenerationItem.objects.filter(study=study, model=model, sample__lt=samples)
    same_kind = (
        same_kind.filter(framing=strategy)
        if kind == GenerationJob.Kind.STRATEGY
        else same_kind.exclude(framing=strategy)
    )
    same_kind.exclude(status=GenerationItem.Status.DONE).update(
        job=job, status=GenerationItem.Status.PENDING, attempts=0, error=""
    )
    if not job.items.exists():
        job.status = GenerationJob.Status.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
    else:
        study.status = Study.Status.GENERATING
        study.save(update_fields=["status", "updated_at"])
        if dispatch:
            from studies.tasks import dispatch_generation_job

            send_on_commit(
                lambda: dispatch_generation_job.delay(job.pk),
                what="generation job",
                on_failure=lambda reason: fail_undispatched_job(
                    job_id=job.pk, reason=reason, study_status=status_before
                ),
            )
    record_audit(
        study=study,
        action="generation_started",
        actor=actor,
        job=job.pk,
        model=model.name,
        kind=kind,
        items=job.items.count(),
    )
    return job


def batch_size_for(model: LanguageModel, mode: str) -> int:
    """How many items one batch task takes, read from settings without loading the model."""
    settings = model.backend_settings
    if model.backend == LanguageModel.Backend.TRANSFORMERS:
        size = int(settings.get("batch_size", 8))
    else:
        size = 4 * int(settings.get("max_concurrency", 8))
    # A structured call writes all five types at once.
    return size * len(RESPONSE_TYPES) if mode == GenerationJob.Mode.STRUCTURED else size


def plan_batches(job: GenerationJob) -> list[list[int]]:
    """Pending item ids in batches; a structured job keeps each (query, sample) together."""
    items = list(
        job.items.filter(status=GenerationItem.Status.PENDING)
        .order_by("query__query_id", "sample", "framing", "response_type")
        .values_list("pk", "query_id", "sample")
    )
    size = batch_size_for(job.model, job.mode)
    if job.mode != GenerationJob.Mode.STRUCTURED:
        return [[pk for pk, _q, _s in items[i : i + size]] for i in range(0, len(items), size)]
    batches: list[list[int]] = [[]]
    for _key, group in itertools.groupby(items, key=lambda row: (row[1], row[2])):
        ids = [pk for pk, _q, _s in group]
        if batches[-1] and len(batches[-1]) + len(ids) > size:
            batches.append([])
        batches[-1].extend(ids)
    return [batch for batch in batches if batch]


@transaction.atomic
def mark_job_running(*, job: GenerationJob) -> GenerationJob:
    GenerationJob.objects.filter(pk=job.pk, status=GenerationJob.Status.QUEUED).update(
        status=GenerationJob.Status.RUNNING, started_at=timezone.now()
    )
    job.refresh_from_db()
    return job


@dataclass(frozen=True)
class PreparedCall:
    """One backend request and the items its answer fills."""

    request: ChatRequest
    item_ids: tuple[int, ...]


@transaction.atomic
def claim_batch(*, job_id: int, item_ids: list[int]) -> list[GenerationItem]:
    """Mark a batch's unfinished items as running; a redelivered batch claims them again."""
    claimable = GenerationItem.objects.filter(
        pk__in=item_ids, job_id=job_id, status__in=OPEN_ITEM_STATUSES
    )
    # Few statements for the whole batch: on a GPU host every query here is time the GPU idles.
    claimed = list(claimable.order_by("pk").select_for_update().values_list("pk", flat=True))
    GenerationItem.objects.filter(pk__in=claimed).update(
        status=GenerationItem.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now()
    )
    return list(
        GenerationItem.objects.filter(pk__in=claimed)
        .select_related("query", "job", "model")
        .order_by("pk")
    )


def _scenarios(items: list[GenerationItem]) -> dict[tuple[int, str], str]:
    rows = Scenario.objects.filter(query_id__in={i.query_id for i in items})
    return {(s.query_id, s.motivation): s.text for s in rows}


def prepare_calls(items: list[GenerationItem]) -> list[PreparedCall]:
    """Turn claimed items into backend requests (one per item, or one per structured group)."""
    if not items:
        return []
    job, model = items[0].job, items[0].model
    base = {"max_tokens": model.max_tokens, "temperature": model.temperature}
    calls: list[PreparedCall] = []
    if job.kind == GenerationJob.Kind.STRATEGY and job.mode == GenerationJob.Mode.STRUCTURED:
        groups = itertools.groupby(items, key=lambda i: (i.query_id, i.sample))
        by_key: dict[tuple[int, int], list[GenerationItem]] = {}
        for key, group in groups:
            by_key.setdefault(key, []).extend(group)
        for (_query, sample), group in by_key.items():
            messages = prompts.structured_messages(group[0].query.text, job.instructions)
            seed = None if model.seed is None else model.seed + sample
            request = ChatRequest(messages=messages, seed=seed, **base)
            calls.append(PreparedCall(request, tuple(i.pk for i in group)))
        return calls
    scenarios = _scenarios(items) if job.kind == GenerationJob.Kind.NATURAL else {}
    for item in items:
        if job.kind == GenerationJob.Kind.STRATEGY:
            messages = prompts.strategy_messages(
                item.query.text, item.response_type, job.instructions
            )
        else:
            scenario = (
                None
                if item.framing == GenerationItem.Framing.QUERY_ONLY
                else scenarios.get((item.query_id, item.framing))
            )
            messages = prompts.natural_messages(item.query.text, scenario)
        seed = None if model.seed is None else model.seed + item.sample
        calls.append(PreparedCall(ChatRequest(messages=messages, seed=seed, **base), (item.pk,)))
    return calls


def _texts_for(call: PreparedCall, outcome: ChatOutcome, items: dict[int, GenerationItem]):
    """Map an outcome onto its items: {item_id: text}; raises MalformedOutput."""
    if len(call.item_ids) == 1 and items[call.item_ids[0]].job.mode != "structured":
        return {call.item_ids[0]: prompts.clean_reply(outcome.text)}
    replies = prompts.parse_structured(outcome.text)
    return {pk: replies[items[pk].response_type] for pk in call.item_ids}


@dataclass(frozen=True)
class BatchResult:
    done: int
    failed: int
    retry_ids: list[int]


@transaction.atomic
def record_batch_results(*, calls: list[PreparedCall], outcomes: list[ChatOutcome]) -> BatchResult:
    """Store what the model wrote, exactly once per item, and turn strategy texts into stimuli."""
    ids = [pk for call in calls for pk in call.item_ids]
    items = {
        item.pk: item
        for item in GenerationItem.objects.select_for_update(of=("self",))
        .select_related("job", "model", "query")
        .filter(pk__in=ids)
    }
    now = timezone.now()
    changed: list[GenerationItem] = []
    retry: list[int] = []
    for call, outcome in zip(calls, outcomes, strict=True):
        # Items no longer running were stored by a redelivered copy of this batch, or cancelled.
        live = [items[pk] for pk in call.item_ids if items[pk].status == "running"]
        if not live:
            continue
        try:
            if not outcome.ok:
                raise _OutcomeError(outcome.error or "no text", outcome.retryable)
            texts = _texts_for(call, outcome, items)
        except (prompts.MalformedOutput, _OutcomeError) as exc:
            for item in live:
                _mark_unusable(item, outcome, exc, now)
                if item.status == GenerationItem.Status.PENDING:
                    retry.append(item.pk)
            changed.extend(live)
            continue
        for item in live:
            _mark_done(item, call, outcome, texts[item.pk], now)
        changed.extend(live)
    GenerationItem.objects.bulk_update(changed, RESULT_FIELDS)
    _store_variants([i for i in changed if i.status == "done" and i.framing == "strategy"])
    return BatchResult(
        done=sum(i.status == "done" for i in changed),
        failed=sum(i.status == "failed" for i in changed),
        retry_ids=retry,
    )


RESULT_FIELDS = [
    "status",
    "text",
    "raw_output",
    "error",
    "prompt",
    "params",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "finished_at",
]


def _mark_unusable(item: GenerationItem, outcome: ChatOutcome, exc: Exception, now) -> None:
    item.raw_output = outcome.text or ""
    item.error = str(exc)
    item.finished_at = now
    retryable = getattr(exc, "retryable", True)
    if retryable and item.attempts < MAX_ATTEMPTS:
        item.status = GenerationItem.Status.PENDING
    else:
        item.status = GenerationItem.Status.FAILED


def _mark_done(
    item: GenerationItem, call: PreparedCall, outcome: ChatOutcome, text: str, now
) -> None:
    share = len(call.item_ids)
    item.status = GenerationItem.Status.DONE
    item.text = text
    item.raw_output = outcome.text or ""
    item.error = ""
    item.prompt = list(call.request.messages)
    item.params = {**item.job.params, "seed": call.request.seed, "mode": item.job.mode}
    item.prompt_tokens = outcome.prompt_tokens
    # A structured call wrote several items; its tokens are shared out evenly.
    item.completion_tokens = (
        outcome.completion_tokens // share if outcome.completion_tokens is not None else None
    )
    item.latency_ms = outcome.latency_ms
    item.finished_at = now


class _OutcomeError(Exception):
    def __init__(self, message: str, retryable: bool):
        super().__init__(message)
        self.retryable = retryable


def _store_variants(items: list[GenerationItem]) -> None:
    """Upsert the stimulus texts on their natural key, so a rerun never adds a second copy."""
    ResponseVariant.objects.bulk_create(
        [
            ResponseVariant(
                query=item.query,
                response_type=item.response_type,
                model_name=item.model.name,
                sample=item.sample,
                text=item.text,
                source=ResponseVariant.Source.GENERATED,
                review_status=ResponseVariant.ReviewStatus.GENERATED,
                provenance={
                    "model": item.model.name,
                    "backend": item.model.backend,
                    "job": item.job_id,
                    "params": item.params,
                    "prompt": item.prompt,
                    "prompt_tokens": item.prompt_tokens,
                    "completion_tokens": item.completion_tokens,
                    "latency_ms": item.latency_ms,
                    "generated_at": item.finished_at.isoformat(),
                },
            )
            for item in items
        ],
        update_conflicts=True,
        unique_fields=["query", "response_type", "model_name", "sample"],
        update_fields=["text", "source", "review_status", "provenance", "updated_at"],
    )


@transaction.atomic
def fail_items(*, item_ids: list[int], error: str) -> None:
    """Give up on items after the task's own retries ran out (e.g. the model never loaded)."""
    GenerationItem.objects.filter(pk__in=item_ids, status__in=OPEN_ITEM_STATUSES).update(
        status=GenerationItem.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )


@transaction.atomic
def finish_job_if_complete(*, job_id: int) -> GenerationJob:
    """Close the job once no item is open; the study goes to review when no job is running."""
    job = GenerationJob.objects.select_for_update().select_related("study").get(pk=job_id)
    if job.status in (
        GenerationJob.Status.DONE,
        GenerationJob.Status.FAILED,
        GenerationJob.Status.CANCELLED,
    ):
        return job
    if job.items.filter(status__in=OPEN_ITEM_STATUSES).exists():
        return job
    failed = job.items.filter(status=GenerationItem.Status.FAILED).count()
    job.status = GenerationJob.Status.FAILED if failed else GenerationJob.Status.DONE
    job.error = f"{failed} item(s) failed; see each item's error" if failed else ""
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    _study_to_review_when_idle(job.study)
    return job


def _study_to_review_when_idle(study: Study, status: str = Study.Status.REVIEW) -> None:
    running = GenerationJob.objects.filter(
        study=study, status__in=(GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING)
    )
    if study.status == Study.Status.GENERATING and not running.exists():
        Study.objects.filter(pk=study.pk).update(status=status)


def _fail_queued_job(job: GenerationJob, *, reason: str, study_status: str) -> bool:
    """Fail a job no worker has started (and its open items); False if one already has."""
    if job.status != GenerationJob.Status.QUEUED:
        return False
    now = timezone.now()
    job.items.filter(status__in=OPEN_ITEM_STATUSES).update(
        status=GenerationItem.Status.FAILED, error=reason[:2000], finished_at=now
    )
    job.status = GenerationJob.Status.FAILED
    job.error = reason
    job.finished_at = now
    job.save(update_fields=["status", "error", "finished_at"])
    _study_to_review_when_idle(job.study, study_status)
    return True


@transaction.atomic
def fail_undispatched_job(*, job_id: int, reason: str, study_status: str) -> None:
    """The broker refused the job's dispatch: fail it, and give the study its status back."""
    job = GenerationJob.objects.select_for_update().select_related("study").get(pk=job_id)
    _fail_queued_job(job, reason=reason, study_status=study_status)


@transaction.atomic
def fail_unstarted_jobs(*, now: datetime | None = None) -> int:
    """Fail jobs no worker took within JOB_QUEUED_LIMIT_MINUTES (lost message, no worker on
    the default queue), so their study goes back to review and a rerun can take them up."""
    limit = django_settings.JOB_QUEUED_LIMIT_MINUTES
    before = (now or timezone.now()) - timedelta(minutes=limit)
    stuck = (
        GenerationJob.objects.select_for_update(skip_locked=True)
        .select_related("study")
        .filter(status=GenerationJob.Status.QUEUED, created_at__lt=before)
    )
    reason = (
        f"not taken by a worker within {limit} minutes (is a worker running on the default "
        "queue?); start the job again to write these texts."
    )
    failed = sum(
        _fail_queued_job(job, reason=reason, study_status=Study.Status.REVIEW) for job in stuck
    )
    if failed:
        logger.warning("failed %d generation job(s) no worker took", failed)
    return failed


@transaction.atomic
def cancel_job(*, job: GenerationJob, actor: AbstractBaseUser | None = None) -> GenerationJob:
    """Stop a job: unfinished items are cancelled; texts already written are kept."""
    job = GenerationJob.objects.select_for_update().select_related("study").get(pk=job.pk)
    if job.status not in (GenerationJob.Status.QUEUED, GenerationJob.Status.RUNNING):
        return job
    job.items.filter(status__in=OPEN_ITEM_STATUSES).update(
        status=GenerationItem.Status.CANCELLED, finished_at=timezone.now()
    )
    job.status = GenerationJob.Status.CANCELLED
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "finished_at"])
    _study_to_review_when_idle(job.study)
    record_audit(study=job.study, action="generation_cancelled", actor=actor, job=job.pk)
    return job


def job_is_cancelled(job_id: int) -> bool:
    return GenerationJob.objects.filter(pk=job_id, status=GenerationJob.Status.CANCELLED).exists()


@transaction.atomic
def approve_variant(
    *, variant: ResponseVariant, actor: AbstractBaseUser | None = None
) -> ResponseVariant:
    """Make this text the one participants see for its query and type."""
    study = _texts_editable_study(variant)
    variant = ResponseVariant.objects.select_for_update().get(pk=variant.pk)
    ResponseVariant.objects.filter(
        query_id=variant.query_id,
        response_type=variant.response_type,
        review_status=ResponseVariant.ReviewStatus.APPROVED,
    ).exclude(pk=variant.pk).update(review_status=ResponseVariant.ReviewStatus.REJECTED)
    variant.review_status = ResponseVariant.ReviewStatus.APPROVED
    variant.save(update_fields=["review_status", "updated_at"])
    record_audit(study=study, action="response_approved", actor=actor, variant=variant.pk)
    return variant


@transaction.atomic
def reject_variant(
    *, variant: ResponseVariant, actor: AbstractBaseUser | None = None
) -> ResponseVariant:
    """Keep this text away from participants (it stays in the table, with its history)."""
    study = _texts_editable_study(variant)
    variant = ResponseVariant.objects.select_for_update().get(pk=variant.pk)
    previous = variant.review_status
    variant.review_status = ResponseVariant.ReviewStatus.REJECTED
    variant.save(update_fields=["review_status", "updated_at"])
    record_audit(
        study=study, action="response_rejected", actor=actor, variant=variant.pk, old=previous
    )
    return variant


@transaction.atomic
def approve_variants(
    *, study: Study, variant_ids: list[int], actor: AbstractBaseUser | None = None
) -> int:
    """Approve several texts at once; all or nothing. Returns how many were approved."""
    variants = list(
        ResponseVariant.objects.filter(pk__in=set(variant_ids), query__study=study)
        .select_related("query")
        .order_by("query__query_id", "response_type")
    )
    if not variant_ids:
        raise ValueError("select at least one text to approve")
    if len(variants) != len(set(variant_ids)):
        raise ValueError("some selected texts are not in this study (any more); reload the page")
    seen: dict[tuple[int, str], ResponseVariant] = {}
    for variant in variants:
        key = (variant.query_id, variant.response_type)
        if key in seen:
            # Only one text per query and type can be shown; approving both would keep the last.
            raise ValueError(
                f"two texts selected for query {variant.query.query_id}, "
                f"{variant.response_type}; approve exactly one per query and type"
            )
        seen[key] = variant
    for variant in variants:
        approve_variant(variant=variant, actor=actor)
    return len(variants)


def _texts_editable_study(variant: ResponseVariant) -> Study:
    """The variant's study, locked; refuses once it launched (its texts are then fixed)."""
    # The study is locked before the variant, in the same order as import_stimuli takes them.
    study_id = Query.objects.values_list("study_id", flat=True).get(pk=variant.query_id)
    study = Study.objects.select_for_update().get(pk=study_id)
    if study.status not in EDITABLE_STATUSES:
        raise StudyStateError(
            f"study '{study.slug}' is {study.status}; its texts are read-only. "
            "Duplicate the study to make a new version with changed texts."
        )
    return study


@transaction.atomic
def edit_variant(
    *, variant: ResponseVariant, text: str, actor: AbstractBaseUser | None = None
) -> ResponseVariant:
    """Change a response's text, keeping what it said before in its edit history."""
    study = _texts_editable_study(variant)
    variant = ResponseVariant.objects.select_for_update().get(pk=variant.pk)
    text = text.strip()
    if not text:
        raise ValueError("a response cannot be empty")
    if text == variant.text:
        return variant
    history = list(variant.provenance.get("edits", []))
    history.append(
        {
            "at": timezone.now().isoformat(),
            "by": getattr(actor, "username", None),
            "previous_text": variant.text,
        }
    )
    variant.provenance = {**variant.provenance, "edits": history}
    variant.text = text
    variant.save(update_fields=["text", "provenance", "updated_at"])
    record_audit(
        study=study, action="response_edited", actor=actor, variant=variant.pk, edit=len(history)
    )
    return variant
