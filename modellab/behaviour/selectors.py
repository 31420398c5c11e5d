"""Reads of model behaviour: run progress, the response-type distribution, labelled rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import Count, QuerySet

from modellab.behaviour import stats
from modellab.behaviour.services import FINISHED_RUN, NATURAL_FRAMINGS
from modellab.classifiers.labels import (
    FULL_COMPLIANCE,
    FULL_REFUSAL,
    PARTIAL_REFUSAL,
    THREE_WAY,
    UNPARSED,
    labels_of,
)
from modellab.models import ClassificationLabel, ClassificationRun
from studies.models import Study

LABEL_COLUMNS: tuple[str, ...] = (
    "model",
    "query_id",
    "category",
    "framing",
    "sample",
    "label",
    "rationale",
    "text",
    "raw_answer",
)
DISTRIBUTION_COLUMNS: tuple[str, ...] = (
    "model",
    "category",
    "framing",
    "label",
    "count",
    "n",
    "share",
    "ci_low",
    "ci_high",
    "n_unparsed",
    "n_responses",
)


def display_labels(scheme: str) -> tuple[str, ...]:
    """The scheme's labels from refusing to complying (the five-way order of the study's
    response types; three-way reordered to match)."""
    if scheme == THREE_WAY:
        return (FULL_REFUSAL, PARTIAL_REFUSAL, FULL_COMPLIANCE)
    return labels_of(scheme)


def runs_for_study(study: Study) -> QuerySet[ClassificationRun]:
    return study.classification_runs.select_related("judge_model", "created_by").order_by(
        "-created_at", "-pk"
    )


def run_progress(run: ClassificationRun) -> dict:
    """Counts per row status, straight from PostgreSQL (the page polls this)."""
    run.refresh_from_db(fields=["status", "error", "started_at", "finished_at"])
    counts = dict(
        run.labels.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(counts.values())
    done = counts.get(ClassificationLabel.Status.DONE, 0)
    failed = counts.get(ClassificationLabel.Status.FAILED, 0)
    unparsed = run.labels.filter(status=ClassificationLabel.Status.DONE, label=UNPARSED).count()
    return {
        "run": run.pk,
        "status": run.status,
        "error": run.error,
        "total": total,
        "done": done,
        "unparsed": unparsed,
        "failed": failed,
        "cancelled": counts.get(ClassificationLabel.Status.CANCELLED, 0),
        "pending": counts.get(ClassificationLabel.Status.PENDING, 0),
        "running": counts.get(ClassificationLabel.Status.RUNNING, 0),
        "percent": round(100 * (done + failed) / total) if total else 100,
        "finished": run.status in FINISHED_RUN,
    }


def _observations(run: ClassificationRun) -> Iterator[tuple[str, str, str, str]]:
    rows = run.labels.filter(status=ClassificationLabel.Status.DONE).values_list(
        "item__model__name", "item__query__category", "item__framing", "label"
    )
    yield from rows.iterator(chunk_size=5000)


def distribution(run: ClassificationRun) -> list[dict]:
    """Per model, the share of each label by category × framing, with Wilson 95% CIs.

    One row per (model, category, framing, label), pooled rows with category and/or framing
    ``(all)``; shares are of the cell's parsed responses, unparsed ones counted beside them
    (stats.distribution_rows). Only labelled rows count (failed ones are in run_progress).
    """
    return stats.distribution_rows(
        _observations(run), display_labels(run.scheme), framings=NATURAL_FRAMINGS
    )


def labelled_rows(run: ClassificationRun) -> Iterator[dict]:
    """Every labelled response of the run (the CSV download), in a stable order."""
    rows = (
        run.labels.filter(status=ClassificationLabel.Status.DONE)
        .order_by("item__model__name", "item__query__query_id", "item__framing", "item__sample")
        .values_list(
            "item__model__name",
            "item__query__query_id",
            "item__query__category",
            "item__framing",
            "item__sample",
            "label",
            "rationale",
            "item__text",
            "raw",
        )
    )
    for values in rows.iterator(chunk_size=2000):
        yield dict(zip(LABEL_COLUMNS, values, strict=True))


def labels_for_items(item_ids: Iterable[int]) -> dict[str, dict[int, str]]:
    """For each classification run that labelled any of these GenerationItem ids, its display
    name ("string_match three_way #12") → {item_id: label}.

    Only stored labels count (rows still queued or failed are left out); ``unparsed`` is
    included as the classifier's answer, for the caller to keep or drop. Runs in creation order.
    """
    ids = list(item_ids)
    out: dict[str, dict[int, str]] = {}
    rows = (
        ClassificationLabel.objects.filter(item_id__in=ids, status=ClassificationLabel.Status.DONE)
        .select_related("run__judge_model")
        .order_by("run_id", "item_id")
    )
    for row in rows:
        out.setdefault(row.run.display_name, {})[row.item_id] = row.label
    return out
