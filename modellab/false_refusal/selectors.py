"""Reads of the false-refusal benchmark: what a user may see, run progress, rates, exports."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from django.db.models import Count, QuerySet
from django.http import Http404

from modellab.classifiers.labels import to_three_way
from modellab.false_refusal.rates import GroupRates, group_order, rates_by_group
from modellab.models import FalseRefusalItem, FalseRefusalRun, PromptSet

FINISHED = (
    FalseRefusalRun.Status.DONE,
    FalseRefusalRun.Status.FAILED,
    FalseRefusalRun.Status.CANCELLED,
)


def _signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def prompt_sets_for(user) -> QuerySet[PromptSet]:
    """A researcher's own prompt sets (all of them for a superuser)."""
    if not _signed_in(user):
        return PromptSet.objects.none()
    sets = PromptSet.objects.select_related("owner")
    return sets if user.is_superuser else sets.filter(owner=user)


def runs_for(user) -> QuerySet[FalseRefusalRun]:
    """The runs a researcher started (all of them for a superuser)."""
    if not _signed_in(user):
        return FalseRefusalRun.objects.none()
    runs = FalseRefusalRun.objects.select_related("prompt_set", "judge_model", "created_by")
    return runs if user.is_superuser else runs.filter(created_by=user)


def prompt_set_for(user, pk: int | str) -> PromptSet:
    """The prompt set if it is the user's; Http404 otherwise (absent and not yours look alike)."""
    found = prompt_sets_for(user).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise Http404("No such prompt set.")
    return found


def prompt_set_named(user, name: str) -> PromptSet | None:
    return prompt_sets_for(user).filter(name=name).order_by("-created_at").first()


def run_for(user, pk: int | str) -> FalseRefusalRun:
    found = runs_for(user).filter(pk=pk).first() if str(pk).isdigit() else None
    if found is None:
        raise Http404("No such false-refusal run.")
    return found


def run_progress(run: FalseRefusalRun) -> dict:
    """Counts per item status, straight from PostgreSQL (the page polls this)."""
    run.refresh_from_db(fields=["status", "error", "started_at", "finished_at"])
    counts = dict(
        run.items.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(counts.values())
    labelled = counts.get(FalseRefusalItem.Status.DONE, 0)
    failed = counts.get(FalseRefusalItem.Status.FAILED, 0)
    generated = counts.get(FalseRefusalItem.Status.GENERATED, 0)
    return {
        "run": run.pk,
        "status": run.status,
        "error": run.error,
        "total": total,
        "pending": counts.get(FalseRefusalItem.Status.PENDING, 0),
        "running": counts.get(FalseRefusalItem.Status.RUNNING, 0),
        "generated": generated + labelled,  # responses stored so far
        "labelled": labelled,
        "failed": failed,
        "cancelled": counts.get(FalseRefusalItem.Status.CANCELLED, 0),
        "percent": round(100 * (labelled + failed) / total) if total else 100,
        "finished": run.status in FINISHED,
    }


def run_rates(run: FalseRefusalRun) -> list[dict]:
    """Per model (by name): its rates per prompt group and how many responses failed."""
    rows = (
        run.items.filter(status__in=(FalseRefusalItem.Status.DONE, FalseRefusalItem.Status.FAILED))
        .values_list("model__name", "prompt__label", "status", "label")
        .order_by()
    )
    pairs: dict[str, list[tuple[str, str]]] = {}
    failed: dict[str, int] = {}
    for model, group, status, label in rows:
        pairs.setdefault(model, [])
        if status == FalseRefusalItem.Status.FAILED:
            failed[model] = failed.get(model, 0) + 1
        else:
            pairs[model].append((group, label))
    names = list(run.language_models.order_by("name").values_list("name", flat=True))
    result = []
    for name in names:
        groups: list[GroupRates] = rates_by_group(pairs.get(name, []))
        result.append(
            {"model": name, "failed": failed.get(name, 0), "groups": [g.to_dict() for g in groups]}
        )
    return result


RESPONSE_COLUMNS = (
    "run",
    "model",
    "prompt_id",
    "prompt_label",
    "category",
    "prompt",
    "status",
    "response",
    "label",
    "label_three_way",
    "rationale",
    "classifier",
    "attempts",
    "error",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
)


def response_rows(run: FalseRefusalRun) -> Iterator[dict]:
    """Every response of the run with its label, in model and prompt order."""
    items = (
        run.items.select_related("model", "prompt")
        .order_by("model__name", "prompt__position")
        .iterator(chunk_size=2000)
    )
    for item in items:
        label = item.label
        yield {
            "run": run.pk,
            "model": item.model.name,
            "prompt_id": item.prompt.external_id,
            "prompt_label": item.prompt.label,
            "category": item.prompt.category,
            "prompt": item.prompt.text,
            "status": item.status,
            "response": item.response,
            "label": label,
            "label_three_way": to_three_way(label) if label else "",
            "rationale": item.rationale,
            "classifier": run.classifier,
            "attempts": item.attempts,
            "error": item.error,
            "prompt_tokens": item.prompt_tokens,
            "completion_tokens": item.completion_tokens,
            "latency_ms": item.latency_ms,
        }


def responses_csv(run: FalseRefusalRun) -> Iterator[str]:
    """The responses as CSV text, a chunk at a time (for a streaming download)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESPONSE_COLUMNS)
    writer.writeheader()
    for number, row in enumerate(response_rows(run), start=1):
        writer.writerow(row)
        if number % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def prompt_groups(prompt_set: PromptSet) -> list[tuple[str, int]]:
    """(label, prompts) per group, in reporting order."""
    counts = dict(
        prompt_set.prompts.values_list("label").annotate(n=Count("id")).values_list("label", "n")
    )
    return [(label, counts[label]) for label in group_order(counts)]
