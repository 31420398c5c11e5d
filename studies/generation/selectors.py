"""Reads of response generation: job progress for the UI, the API and the shell."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from studies import access
from studies.models import GenerationItem, GenerationJob, LanguageModel, Study

FINISHED = (GenerationJob.Status.DONE, GenerationJob.Status.FAILED, GenerationJob.Status.CANCELLED)


def job_progress(job: GenerationJob) -> dict:
    """Counts per item status, straight from PostgreSQL (the UI polls this)."""
    job.refresh_from_db(fields=["status", "error", "started_at", "finished_at"])
    counts = dict(
        job.items.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(counts.values())
    done = counts.get(GenerationItem.Status.DONE, 0)
    failed = counts.get(GenerationItem.Status.FAILED, 0)
    return {
        "job": job.pk,
        "status": job.status,
        "error": job.error,
        "total": total,
        "done": done,
        "failed": failed,
        "cancelled": counts.get(GenerationItem.Status.CANCELLED, 0),
        "pending": counts.get(GenerationItem.Status.PENDING, 0),
        "running": counts.get(GenerationItem.Status.RUNNING, 0),
        "percent": round(100 * (done + failed) / total) if total else 100,
        "finished": job.status in FINISHED,
    }


def jobs_for_study(study: Study) -> QuerySet[GenerationJob]:
    return study.generation_jobs.select_related("model").order_by("-created_at")


def failed_items(job: GenerationJob, limit: int = 50) -> list[GenerationItem]:
    return list(
        job.items.filter(status=GenerationItem.Status.FAILED)
        .select_related("query")
        .order_by("query__query_id")[:limit]
    )


def chat_models_for(user) -> QuerySet[LanguageModel]:
    """Models the user may use where a model writes text (generation, judges, targets)."""
    return access.models_for(user).filter(kind=LanguageModel.Kind.CHAT)


def embedding_models_for(user) -> QuerySet[LanguageModel]:
    """Models the user may use to turn texts into vectors (near-duplicate detection)."""
    return access.models_for(user).filter(kind=LanguageModel.Kind.EMBEDDING)
