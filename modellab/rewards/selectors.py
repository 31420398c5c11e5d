"""Reads of reward scoring: runs and their progress, scores per response type, and their
agreement with participants' mean ratings of a chosen measure per stimulus."""

from __future__ import annotations

import csv
import io
from collections import defaultdict

from django.db.models import Avg, Count, QuerySet

from annotation.models import Rating
from annotation.selectors import counted_participants
from modellab.models import RewardRun, RewardScore
from modellab.rewards import agreement
from studies.domain import DEFAULT_INCLUSION, RESPONSE_TYPES
from studies.models import Question, ResponseVariant, Study

FINISHED = (RewardRun.Status.DONE, RewardRun.Status.FAILED, RewardRun.Status.CANCELLED)

#: The CSV download's columns, in order.
CSV_COLUMNS = (
    "run",
    "model",
    "scorer",
    "query_id",
    "category",
    "response_type",
    "motivation",
    "variant_id",
    "variant_model",
    "variant_sample",
    "status",
    "score",
    "z",
    "rationale",
    "raw_answer",
    "error",
    "attempts",
)


def runs_for(study: Study) -> QuerySet[RewardRun]:
    return study.reward_runs.select_related("model", "created_by").order_by("-created_at")


def run_progress(run: RewardRun) -> dict:
    """Counts per score status, straight from PostgreSQL (the page polls this)."""
    run.refresh_from_db(fields=["status", "error", "started_at", "finished_at"])
    counts = dict(
        run.scores.values_list("status").annotate(n=Count("id")).values_list("status", "n")
    )
    total = sum(counts.values())
    done = counts.get(RewardScore.Status.DONE, 0)
    failed = counts.get(RewardScore.Status.FAILED, 0)
    unparsed = counts.get(RewardScore.Status.UNPARSED, 0)
    return {
        "run": run.pk,
        "status": run.status,
        "error": run.error,
        "total": total,
        "done": done,
        "failed": failed,
        "unparsed": unparsed,
        "pending": counts.get(RewardScore.Status.PENDING, 0),
        "running": counts.get(RewardScore.Status.RUNNING, 0),
        "cancelled": counts.get(RewardScore.Status.CANCELLED, 0),
        "percent": round(100 * (done + failed + unparsed) / total) if total else 100,
        "finished": run.status in FINISHED,
    }


def _current(run: RewardRun) -> QuerySet[RewardScore]:
    """The run's scores of responses still approved (a rejected text is no stimulus now)."""
    return run.scores.filter(variant__review_status=ResponseVariant.ReviewStatus.APPROVED)


def score_rows(run: RewardRun) -> list[dict]:
    """Every score of the run (any status) with its stimulus and its z-score within the run."""
    rows = list(
        _current(run)
        .order_by("variant__query__query_id", "variant__response_type", "motivation", "pk")
        .values(
            "variant__query__query_id",
            "variant__query__category",
            "variant__response_type",
            "motivation",
            "variant_id",
            "variant__model_name",
            "variant__sample",
            "status",
            "score",
            "rationale",
            "raw_answer",
            "error",
            "attempts",
        )
    )
    scored = [i for i, r in enumerate(rows) if r["status"] == RewardScore.Status.DONE]
    z = agreement.zscores([rows[i]["score"] for i in scored])
    z_by_index = dict(zip(scored, z, strict=True))
    return [
        {
            "run": run.pk,
            "model": run.model.name,
            "scorer": run.scorer,
            "query_id": r["variant__query__query_id"],
            "category": r["variant__query__category"],
            "response_type": r["variant__response_type"],
            "motivation": r["motivation"],
            "variant_id": r["variant_id"],
            "variant_model": r["variant__model_name"],
            "variant_sample": r["variant__sample"],
            "status": r["status"],
            "score": r["score"],
            "z": z_by_index.get(i),
            "rationale": r["rationale"],
            "raw_answer": r["raw_answer"],
            "error": r["error"],
            "attempts": r["attempts"],
        }
        for i, r in enumerate(rows)
    ]


def scores_csv(run: RewardRun) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in score_rows(run):
        writer.writerow({k: "" if row[k] is None else row[k] for k in CSV_COLUMNS})
    return buffer.getvalue()


def _done_scores(run: RewardRun) -> list[tuple[int, str, str, float]]:
    """(variant id, motivation, response type, score) of the run's scored stimuli."""
    return list(
        _current(run)
        .filter(status=RewardScore.Status.DONE)
        .order_by("pk")
        .values_list("variant_id", "motivation", "variant__response_type", "score")
    )


def results_by_type(run: RewardRun) -> list[dict]:
    """Per response type (design order): n, raw mean and SD, z-scored mean and SD, where z is
    taken over all of this run's scores (one scorer)."""
    return agreement.by_response_type(
        [(t, score) for _v, _m, t, score in _done_scores(run)], order=RESPONSE_TYPES
    )


def box_values(run: RewardRun) -> dict[str, dict[str, list[float]]]:
    """{response type: {"raw": [...], "z": [...]}} for box plots."""
    rows = _done_scores(run)
    z = agreement.zscores([score for *_, score in rows])
    values: dict[str, dict[str, list[float]]] = {}
    for (_v, _m, response_type, score), z_value in zip(rows, z, strict=True):
        entry = values.setdefault(response_type, {"raw": [], "z": []})
        entry["raw"].append(score)
        if z_value is not None:
            entry["z"].append(z_value)
    return {t: values[t] for t in sorted(values, key=_type_order)}


def _type_order(response_type: str) -> tuple[int, str]:
    order = RESPONSE_TYPES.index(response_type) if response_type in RESPONSE_TYPES else 99
    return order, response_type


def measures(study: Study) -> list[Question]:
    """The study's rated questions (not attention checks nor questionnaire blocks)."""
    return list(
        study.questions.filter(is_attention_check=False, block__isnull=True).order_by("order", "pk")
    )


def human_means(
    study: Study, measure: str, inclusion: str = DEFAULT_INCLUSION
) -> dict[tuple[int, str], tuple[float, int]]:
    """Per stimulus (variant shown, motivation of the scenario read; "" = query alone), the
    mean raw rating of question ``measure`` and how many ratings it averages, over the
    participants the inclusion rule counts. A trial records the very variant it showed, so the
    match with a score is exact even when a query had several texts of one type."""
    rows = (
        Rating.objects.filter(
            participant__in=counted_participants(study, inclusion),
            question__study=study,
            question__key=measure,
            trial__variant__isnull=False,
        )
        .values("trial__variant_id", "trial__slot_item__motivation")
        .annotate(mean=Avg("value"), n=Count("id"))
    )
    return {
        (r["trial__variant_id"], r["trial__slot_item__motivation"] or ""): (
            float(r["mean"]),
            r["n"],
        )
        for r in rows
    }


#: The per-stimulus CSV's columns: what the agreement figures are computed from.
STIMULUS_COLUMNS = (
    "query_id",
    "response_type",
    "motivation",
    "variant_id",
    "score",
    "human_mean",
    "n_ratings",
)


def stimulus_rows(run: RewardRun, measure: str, inclusion: str = DEFAULT_INCLUSION) -> list[dict]:
    """One row per stimulus with both a score and ratings: the pairs the correlations and the
    pairwise agreement are computed from, so anyone can recompute them."""
    humans = human_means(run.study, measure, inclusion)
    rows = (
        _current(run)
        .filter(status=RewardScore.Status.DONE)
        .order_by("variant__query__query_id", "variant__response_type", "motivation", "pk")
        .values_list(
            "variant__query__query_id",
            "variant__response_type",
            "motivation",
            "variant_id",
            "score",
        )
    )
    return [
        {
            "query_id": query_id,
            "response_type": response_type,
            "motivation": motivation,
            "variant_id": variant_id,
            "score": score,
            "human_mean": humans[(variant_id, motivation)][0],
            "n_ratings": humans[(variant_id, motivation)][1],
        }
        for query_id, response_type, motivation, variant_id, score in rows
        if (variant_id, motivation) in humans
    ]


def stimulus_csv(run: RewardRun, measure: str, inclusion: str = DEFAULT_INCLUSION) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=STIMULUS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(stimulus_rows(run, measure, inclusion))
    return buffer.getvalue()


def agreement_with(
    run: RewardRun, measure: str, inclusion: str = DEFAULT_INCLUSION
) -> dict[str, object]:
    """Rank correlation and pairwise agreement between the run's scores and the mean rating of
    ``measure`` per stimulus, over the stimuli that have both (a score and at least one
    rating): over all of them, and per framing (query alone, each scenario) when several
    framings were rated."""
    humans = human_means(run.study, measure, inclusion)
    rewards = {(v, m): score for v, m, _t, score in _done_scores(run)}
    keys, reward_values, human_values = agreement.matched(
        rewards, {k: mean for k, (mean, _n) in humans.items()}
    )
    overall = agreement.correlation(reward_values, human_values)
    overall["ratings"] = sum(humans[k][1] for k in keys)
    by_motivation: dict[str, list[int]] = defaultdict(list)
    for index, (_variant, motivation) in enumerate(keys):
        by_motivation[motivation].append(index)
    groups = []
    for motivation in sorted(by_motivation):
        idx = by_motivation[motivation]
        stats = agreement.correlation(
            [reward_values[i] for i in idx], [human_values[i] for i in idx]
        )
        groups.append({"motivation": motivation, **stats})
    return {
        "run": run.pk,
        "measure": measure,
        "inclusion": inclusion,
        "overall": overall,
        "by_motivation": groups if len(groups) > 1 else [],
    }


def comparison(study: Study) -> list[dict]:
    """Every run of the study with scores, side by side: per response type the mean z-score
    within that run (each scorer on its own scale, so scorers compare by where they put each
    type, not by raw units)."""
    rows = []
    for run in runs_for(study):
        by_type = {r["response_type"]: r for r in results_by_type(run)}
        if not by_type:
            continue
        rows.append(
            {
                "run": run,
                "z_means": [
                    (by_type[t]["z_mean"] if t in by_type else None) for t in RESPONSE_TYPES
                ],
                "n": sum(r["n"] for r in by_type.values()),
            }
        )
    return rows
