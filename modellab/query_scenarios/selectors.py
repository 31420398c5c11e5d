"""Reads of query–scenario generation: whose jobs, progress, candidates, the kept set as a file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

from django.db.models import Count, Q, QuerySet

from modellab.material.selectors import owned_job, owned_jobs
from modellab.models import QueryScenarioCandidate, QueryScenarioJob
from modellab.query_scenarios.services import job_kind
from studies.domain import RESPONSE_TYPES

Status = QueryScenarioJob.Status
# The machine's part is over: rounds done (people may still be verifying), or stopped.
MACHINE_FINISHED = (Status.VERIFYING, Status.DONE, Status.FAILED, Status.CANCELLED)

#: The platform's wide stimuli columns (studies.stimuli_file), then provenance (kept by the
#: stimuli parser as each query's metadata; ``source`` becomes the query's source).
STIMULI_COLUMNS: tuple[str, ...] = (
    "query_id",
    "query",
    "category",
    "topic",
    "benign_scenario",
    "malicious_scenario",
    *RESPONSE_TYPES,
)
PROVENANCE_COLUMNS: tuple[str, ...] = (
    "source",
    "job",
    "round",
    "generator",
    "intent_judge",
    "judge_benign_label",
    "judge_benign_reasoning",
    "judge_malicious_label",
    "judge_malicious_reasoning",
    "human_benign_label",
    "human_malicious_label",
    "final_source",
)


def jobs_for(user) -> QuerySet[QueryScenarioJob]:
    """The jobs a researcher started (all of them for a superuser)."""
    return owned_jobs(
        QueryScenarioJob,
        user,
        "generator",
        "intent_judge",
        "embedding_model",
        "study",
        "output_study",
        "owner",
    )


def job_for(user, pk: int | str) -> QueryScenarioJob:
    """The job if it is the user's; Http404 otherwise (absent and not yours look alike)."""
    return owned_job(jobs_for(user), pk, what="query–scenario job")


def job_named(user, name: str) -> QueryScenarioJob | None:
    return jobs_for(user).filter(name=name).first()


def job_progress(job: QueryScenarioJob) -> dict:
    """Rounds, candidates and the budget, straight from PostgreSQL (the page polls this)."""
    job.refresh_from_db(
        fields=["status", "error", "calls_used", "current_round", "params", "finished_at"]
    )
    rounds_done = job.round_set.filter(status="done").count()
    counts = job.candidates.aggregate(
        total=Count("id"),
        duplicates=Count("id", filter=~Q(duplicate_reason="")),
        judged=Count("id", filter=~Q(judge_benign_label="")),
        accepted=Count("id", filter=Q(judge_accepted=True, duplicate_reason="")),
        kept=Count("id", filter=Q(kept=True)),
    )
    finished = job.status in MACHINE_FINISHED
    return {
        "job": job.pk,
        "status": job.status,
        "error": job.error,
        "notes": job.params.get("notes", []),
        "rounds": job.rounds,
        "rounds_done": rounds_done,
        "current_round": job.current_round,
        "candidates": counts["total"],
        "duplicates": counts["duplicates"],
        "judged": counts["judged"],
        "accepted": counts["accepted"],
        "kept": counts["kept"],
        "calls_used": job.calls_used,
        "budget": job.budget,
        "percent": 100 if finished else round(100 * rounds_done / max(job.rounds, 1)),
        "finished": finished,
    }


def candidates(job: QueryScenarioJob) -> QuerySet[QueryScenarioCandidate]:
    return job.candidates.select_related("round", "duplicate_of", "source_query").order_by(
        "position"
    )


def verification_rows(job: QueryScenarioJob) -> list[dict]:
    """Each verification item's coders' labels and reading, the ties first (they need the
    researcher): [{key, candidate, motivation, labels, majority, tie, complete}]."""
    if job.verification_task_id is None:
        return []
    from annotation.coding.selectors import verification_outcomes

    by_pk = {c.pk: c for c in job.candidates.all()}
    rows = []
    for key, outcome in verification_outcomes(job.verification_task).items():
        _, pk, motivation = key.split(":")
        rows.append(
            {
                "key": key,
                "candidate": by_pk.get(int(pk)),
                "motivation": motivation,
                "labels": list(outcome.labels),
                "majority": outcome.majority,
                "tie": outcome.tie,
                "complete": outcome.complete,
            }
        )
    rows.sort(key=lambda r: (not r["tie"], r["candidate"].position if r["candidate"] else 0))
    return rows


def stimuli_rows(job: QueryScenarioJob) -> Iterator[dict]:
    """The kept set in the platform's wide format with provenance, by query id order of
    arrival. Response-type columns are present and empty (generation writes them)."""
    kind = job_kind(job)
    kept = job.candidates.filter(kept=True).select_related("round").order_by("position")
    for c in kept:
        yield {
            "query_id": c.query_id,
            "query": c.query,
            "category": c.category,
            "topic": c.topic,
            "benign_scenario": c.benign_scenario,
            "malicious_scenario": c.malicious_scenario,
            **{t: "" for t in RESPONSE_TYPES},
            "source": f"query-scenario job {job.name} ({kind})",
            "job": job.pk,
            "round": c.round.number,
            "generator": job.generator.name,
            "intent_judge": job.intent_judge.name if job.intent_judge else "",
            "judge_benign_label": c.judge_benign_label,
            "judge_benign_reasoning": c.judge_benign_reasoning,
            "judge_malicious_label": c.judge_malicious_label,
            "judge_malicious_reasoning": c.judge_malicious_reasoning,
            "human_benign_label": c.human_benign_label,
            "human_malicious_label": c.human_malicious_label,
            "final_source": c.final_source,
        }


def stimuli_csv(job: QueryScenarioJob) -> Iterator[str]:
    """The kept set as a CSV stimuli file (what studies.stimuli_file parses)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(
        buffer, fieldnames=[*STIMULI_COLUMNS, *PROVENANCE_COLUMNS], lineterminator="\n"
    )
    writer.writeheader()
    for number, row in enumerate(stimuli_rows(job), 1):
        writer.writerow(row)
        if number % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def stimuli_jsonl(job: QueryScenarioJob) -> Iterator[str]:
    """The kept set as a JSONL stimuli file, one object per query."""
    for row in stimuli_rows(job):
        yield json.dumps(row, ensure_ascii=False) + "\n"
