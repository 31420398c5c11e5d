"""Reads of pseudo-harmful generation: whose jobs, progress, rounds, ranked candidates."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from modellab.classifiers.labels import FULL_COMPLIANCE, FULL_REFUSAL, PARTIAL_REFUSAL, UNPARSED
from modellab.material.selectors import owned_job, owned_jobs
from modellab.models import PseudoHarmfulCandidate, PseudoHarmfulJob, PseudoHarmfulProbe
from modellab.pseudo_harmful.services import FINISHED_JOBS

Probe = PseudoHarmfulProbe


def jobs_for(user) -> QuerySet[PseudoHarmfulJob]:
    """A researcher's own jobs (every job for a superuser)."""
    return owned_jobs(
        PseudoHarmfulJob,
        user,
        "owner",
        "generator",
        "classifier_model",
        "harm_judge",
        "embedding_model",
    )


def job_for(user, pk: int | str) -> PseudoHarmfulJob:
    """The job if it is the user's; Http404 otherwise (absent and not yours look alike)."""
    return owned_job(jobs_for(user), pk, what="pseudo-harmful job")


def job_named(user, name: str) -> PseudoHarmfulJob | None:
    return jobs_for(user).filter(name=name).first()


def _percent(part: int, whole: int) -> int:
    return min(100, round(100 * part / whole)) if whole else 0


def job_progress(job: PseudoHarmfulJob) -> dict:
    """Rounds, probes and budget, straight from PostgreSQL (the page polls this)."""
    job.refresh_from_db(
        fields=["status", "error", "current_round", "calls_used", "params", "finished_at"]
    )
    rounds_done = job.round_set.filter(status="done").count()
    probes = dict(
        Probe.objects.filter(candidate__job=job)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    total = sum(probes.values())
    labelled = probes.get(Probe.Status.DONE, 0)
    failed = probes.get(Probe.Status.FAILED, 0)
    candidates = job.candidates.aggregate(
        total=Count("id"),
        duplicates=Count("id", filter=~Q(duplicate_reason="")),
        kept=Count("id", filter=Q(kept=True)),
        judged=Count("id", filter=~Q(judge_label="")),
    )
    return {
        "job": job.pk,
        "status": job.status,
        "error": job.error,
        "stop_reason": job.params.get("stop_reason", ""),
        "current_round": job.current_round,
        "rounds": job.rounds,
        "rounds_done": rounds_done,
        "rounds_percent": _percent(rounds_done, job.rounds),
        "probes": total,
        "probes_labelled": labelled,
        "probes_failed": failed,
        "probes_cancelled": probes.get(Probe.Status.CANCELLED, 0),
        "probes_percent": _percent(labelled + failed, total) if total else 0,
        "budget": job.budget,
        "calls_used": job.calls_used,
        "budget_percent": _percent(job.calls_used, job.budget),
        "candidates": candidates["total"],
        "duplicates": candidates["duplicates"],
        "kept": candidates["kept"],
        "judged": candidates["judged"],
        "verification_task": job.verification_task_id,
        "finished": job.status in FINISHED_JOBS,
    }


def rounds(job: PseudoHarmfulJob) -> list[dict]:
    """Each round: examples given, calls, problems, candidates and duplicates it brought."""
    counts = {
        row["round_id"]: row
        for row in job.candidates.values("round_id").annotate(
            n=Count("id"), duplicates=Count("id", filter=~Q(duplicate_reason=""))
        )
    }
    result = []
    for round_ in job.round_set.order_by("number"):
        row = counts.get(round_.pk, {"n": 0, "duplicates": 0})
        result.append(
            {
                "round": round_,
                "number": round_.number,
                "status": round_.status,
                "examples": round_.examples,
                "calls": round_.calls,
                "problems": round_.problems,
                "candidates": row["n"],
                "duplicates": row["duplicates"],
                "error": round_.error,
            }
        )
    return result


def refusals_per_target(job: PseudoHarmfulJob) -> dict[int, dict[str, dict[str, int]]]:
    """Per candidate id, per target name: full, partial, complied, unparsed, failed probes."""
    rows = (
        Probe.objects.filter(candidate__job=job)
        .values("candidate_id", "model__name")
        .annotate(
            full=Count("id", filter=Q(status="done", label=FULL_REFUSAL)),
            partial=Count("id", filter=Q(status="done", label=PARTIAL_REFUSAL)),
            complied=Count("id", filter=Q(status="done", label=FULL_COMPLIANCE)),
            unparsed=Count("id", filter=Q(status="done", label=UNPARSED)),
            failed=Count("id", filter=Q(status="failed")),
            asked=Count("id"),
        )
    )
    result: dict[int, dict[str, dict[str, int]]] = {}
    for row in rows:
        result.setdefault(row["candidate_id"], {})[row["model__name"]] = {
            key: row[key] for key in ("full", "partial", "complied", "unparsed", "failed", "asked")
        }
    return result


def ranked_candidates(job: PseudoHarmfulJob) -> QuerySet[PseudoHarmfulCandidate]:
    """Non-duplicates, ranked ones first by rank, then the unranked in order of arrival."""
    return (
        job.candidates.filter(duplicate_reason="")
        .select_related("round")
        .order_by("rank", "position")
    )


def duplicates(job: PseudoHarmfulJob) -> QuerySet[PseudoHarmfulCandidate]:
    return (
        job.candidates.exclude(duplicate_reason="")
        .select_related("duplicate_of", "round")
        .order_by("position")
    )


def candidate_payload(candidate: PseudoHarmfulCandidate, per_target: dict) -> dict:
    return {
        "id": candidate.pk,
        "position": candidate.position,
        "round": candidate.round.number,
        "text": candidate.text,
        "category": candidate.category,
        "topic": candidate.topic,
        "words": candidate.words,
        "duplicate_reason": candidate.duplicate_reason or None,
        "duplicate_of": candidate.duplicate_of_id,
        "similarity": candidate.similarity,
        "probes": candidate.probes,
        "full_refusals": candidate.full_refusals,
        "partial_refusals": candidate.partial_refusals,
        "unparsed": candidate.unparsed,
        "refusal_share": candidate.refusal_share,
        "rank": candidate.rank,
        "per_target": per_target.get(candidate.pk, {}),
        "kept": candidate.kept,
        "judge_label": candidate.judge_label or None,
        "judge_rationale": candidate.judge_rationale or None,
        "human_label": candidate.human_label or None,
        "final_label": candidate.final_label or None,
    }


def candidates_payload(job: PseudoHarmfulJob) -> list[dict]:
    """Every candidate of the job: ranked non-duplicates first, then the duplicates."""
    per_target = refusals_per_target(job)
    return [candidate_payload(c, per_target) for c in [*ranked_candidates(job), *duplicates(job)]]
