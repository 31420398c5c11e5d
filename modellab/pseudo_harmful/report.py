"""Reads of a pseudo-harmful job's quality report: counts, refusals, lengths, repeats, FRR."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from django.db.models import Q

from annotation.coding.models import CodingTask
from annotation.coding.selectors import verification_outcomes
from modellab.classifiers.labels import (
    FULL_REFUSAL,
    HARMFULNESS_LABELS,
    PARTIAL_REFUSAL,
    UNPARSED,
    to_three_way,
)
from modellab.false_refusal import selectors as frr_selectors
from modellab.false_refusal.rates import Proportion, format_rate, group_order
from modellab.material.dedup import near_duplicate_rate
from modellab.material.selectors import owned_job, owned_jobs
from modellab.models import FalseRefusalRun, PromptSet
from modellab.models.material import PseudoHarmfulJob, PseudoHarmfulProbe
from modellab.pseudo_harmful.outcome import final_candidates, source_key, verified_candidates

#: Words per bar of the length histogram.
LENGTH_BIN_WIDTH = 5
NOT_FINAL = "(not final)"


# --- pure computations (no database) -------------------------------------------------------


@dataclass(frozen=True)
class CandidateFacts:
    """What the report needs of one candidate."""

    round: int
    category: str
    duplicate: bool
    probed: bool  # at least one target response was labelled
    refused: bool  # at least one target refused it (under the job's refusal setting)
    kept: bool
    final_label: str = ""  # "" until finalised


def counts_as_refusal(label: str, setting: str) -> bool:
    """A probe's label counts as a refusal: full refusal, or (``full_partial``) partial too."""
    if not label:
        return False
    three_way = to_three_way(label)
    if three_way == FULL_REFUSAL:
        return True
    return setting == PseudoHarmfulJob.Refusal.FULL_PARTIAL and three_way == PARTIAL_REFUSAL


def round_counts(facts: Iterable[CandidateFacts]) -> list[dict]:
    """Per round: candidates generated, of them duplicates, probed (non-duplicates with a
    labelled target response) and refused by at least one target."""
    rounds: dict[int, dict] = {}
    for f in facts:
        row = rounds.setdefault(
            f.round, {"round": f.round, "generated": 0, "duplicates": 0, "probed": 0, "refused": 0}
        )
        row["generated"] += 1
        row["duplicates"] += f.duplicate
        row["probed"] += f.probed and not f.duplicate
        row["refused"] += f.refused and not f.duplicate
    return [rounds[n] for n in sorted(rounds)]


def category_counts(facts: Iterable[CandidateFacts]) -> list[dict]:
    """Per category (non-duplicate candidates): generated, probed, refused by at least one
    target, kept for the judge, and in the final set; categories alphabetically."""
    rows: dict[str, dict] = {}
    for f in facts:
        if f.duplicate:
            continue
        name = f.category or "(none)"
        row = rows.setdefault(
            name,
            {"category": name, "generated": 0, "probed": 0, "refused": 0, "kept": 0, "final": 0},
        )
        row["generated"] += 1
        row["probed"] += f.probed
        row["refused"] += f.refused
        row["kept"] += f.kept
        row["final"] += f.final_label in HARMFULNESS_LABELS and f.final_label != "harmful"
    return [rows[name] for name in sorted(rows)]


def label_counts(facts: Iterable[CandidateFacts]) -> list[dict]:
    """Final labels of the verified candidates (harmful ones are left out of the set)."""
    counts = Counter(f.final_label for f in facts if f.final_label)
    return [
        {"label": label, "count": counts.get(label, 0), "in_set": label != "harmful"}
        for label in HARMFULNESS_LABELS
    ]


def refused_share(facts: Iterable[CandidateFacts]) -> Proportion:
    """The share of probed, non-duplicate candidates that at least one target refused."""
    probed = [f for f in facts if f.probed and not f.duplicate]
    return Proportion.of(sum(f.refused for f in probed), len(probed))


def word_count(text: str) -> int:
    return len(text.split())


def length_summary(lengths: Sequence[int], width: int = LENGTH_BIN_WIDTH) -> dict:
    """Prompt lengths in words: n, min, median, max, and a histogram of bins ``width`` words
    wide (1–5, 6–10, …) from the first bin with a prompt to the last."""
    if not lengths:
        return {"n": 0, "min": None, "median": None, "max": None, "histogram": []}
    counts = Counter((max(n, 1) - 1) // width for n in lengths)
    first, last = min(counts), max(counts)
    return {
        "n": len(lengths),
        "min": min(lengths),
        "median": statistics.median(lengths),
        "max": max(lengths),
        "histogram": [
            {"from": b * width + 1, "to": (b + 1) * width, "count": counts.get(b, 0)}
            for b in range(first, last + 1)
        ],
    }


def length_figure(summary: dict) -> dict:
    """The histogram as a Plotly bar chart (one bar per bin, labelled with its word range)."""
    bins = summary["histogram"]
    return {
        "data": [
            {
                "type": "bar",
                "x": [f"{b['from']}–{b['to']}" for b in bins],
                "y": [b["count"] for b in bins],
                "marker": {"color": "#0072B2"},
                "hovertemplate": "%{x} words: %{y} prompts<extra></extra>",
            }
        ],
        "layout": {
            "title": {"text": "Prompt length"},
            "xaxis": {"title": {"text": "Words"}, "type": "category"},
            "yaxis": {"title": {"text": "Prompts"}, "rangemode": "tozero"},
            "margin": {"t": 50, "b": 60},
            "height": 320,
        },
    }


def format_share(share: dict) -> str:
    """``5 of 7 (71.4% [35.9, 91.8])`` from a Proportion's fields, or ``none probed``."""
    if not share["n"]:
        return "none probed yet"
    return f"{share['count']} of {share['n']} ({format_rate(Proportion(**share))})"


def _rate_cell(group: dict | None, key: str) -> str:
    if group is None:
        return "–"
    return format_rate(Proportion(**group[key]))


def side_by_side(
    targets: Sequence[str], new_rates: list[dict] | None, reference_rates: dict[str, list[dict]]
) -> list[dict]:
    """One row per target and prompt group: its rates on the new set and on the reference set
    (``run_rates``' per-model entries; ``reference_rates`` model → its groups), as text."""
    new = {m["model"]: {g["group"]: g for g in m["groups"]} for m in new_rates or []}
    rows = []
    for model in targets:
        mine = new.get(model, {})
        theirs = {g["group"]: g for g in reference_rates.get(model, [])}
        for group in group_order([*mine, *theirs]) or ["—"]:
            a, b = mine.get(group), theirs.get(group)
            rows.append(
                {
                    "model": model,
                    "group": group,
                    "n": a["n"] if a else 0,
                    "full": _rate_cell(a, "full"),
                    "full_or_partial": _rate_cell(a, "full_or_partial"),
                    "reference_n": b["n"] if b else 0,
                    "reference_full": _rate_cell(b, "full"),
                    "reference_full_or_partial": _rate_cell(b, "full_or_partial"),
                }
            )
    return rows


# --- reads ---------------------------------------------------------------------------------


def jobs_for(user):
    """A researcher's own pseudo-harmful jobs (all of them for a superuser)."""
    return owned_jobs(PseudoHarmfulJob, user, "owner", "generator", "prompt_set")


def job_for(user, pk: int | str) -> PseudoHarmfulJob:
    """The job if it is the user's; Http404 otherwise (absent and not yours look alike)."""
    return owned_job(jobs_for(user), pk, what="pseudo-harmful job")


def candidate_facts(job: PseudoHarmfulJob) -> list[CandidateFacts]:
    probes: dict[int, list[str]] = {}
    for candidate_id, label in PseudoHarmfulProbe.objects.filter(
        candidate__job=job, status=PseudoHarmfulProbe.Status.DONE
    ).values_list("candidate_id", "label"):
        probes.setdefault(candidate_id, []).append(label)
    facts = []
    for pk, number, category, duplicate, kept, final_label, final_source in job.candidates.order_by(
        "position"
    ).values_list(
        "pk",
        "round__number",
        "category",
        "duplicate_reason",
        "kept",
        "final_label",
        "final_source",
    ):
        labels = [lb for lb in probes.get(pk, []) if lb and to_three_way(lb) != UNPARSED]
        facts.append(
            CandidateFacts(
                round=number,
                category=category,
                duplicate=bool(duplicate),
                probed=bool(labels),
                refused=any(counts_as_refusal(lb, job.refusal) for lb in labels),
                kept=kept,
                final_label=final_label if final_source else "",
            )
        )
    return facts


def set_texts(job: PseudoHarmfulJob) -> tuple[str, list[str]]:
    """The texts lengths and repeats are measured on: the final set once there is one, else
    the candidates kept for the judge so far."""
    if job.prompt_set_id is not None:
        return "final set", [c.text for c in final_candidates(job)]
    kept = job.candidates.filter(kept=True).order_by("position").values_list("text", flat=True)
    return "kept candidates (not finalised yet)", list(kept)


def latest_run(user, prompt_set: PromptSet | None) -> FalseRefusalRun | None:
    if prompt_set is None:
        return None
    return frr_selectors.runs_for(user).filter(prompt_set=prompt_set).first()


def reference_rates(user, reference: PromptSet | None, targets: Sequence[str]) -> dict:
    """Each target's rates on the reference set from the newest finished run of it that
    asked that target: model → {"run": pk, "groups": [...]}."""
    if reference is None:
        return {}
    runs = (
        frr_selectors.runs_for(user)
        .filter(prompt_set=reference, status__in=frr_selectors.FINISHED)
        .filter(Q(language_models__name__in=targets))
        .distinct()
        .order_by("-created_at")
    )
    found: dict[str, dict] = {}
    for run in runs:
        for entry in frr_selectors.run_rates(run):
            if entry["model"] in targets and entry["model"] not in found:
                found[entry["model"]] = {"run": run.pk, "groups": entry["groups"]}
        if len(found) == len(targets):
            break
    return found


def quality_report(job: PseudoHarmfulJob, *, user, reference: PromptSet | None = None) -> dict:
    """The whole report as plain data (the page, report.json and the API show this)."""
    facts = candidate_facts(job)
    basis, texts = set_texts(job)
    lengths = length_summary([word_count(t) for t in texts])
    share = refused_share(facts)
    targets = list(job.targets.order_by("name").values_list("name", flat=True))
    run = latest_run(user, job.prompt_set)
    new_rates = frr_selectors.run_rates(run) if run is not None else None
    ref = reference_rates(user, reference, targets)
    return {
        "job": {"id": job.pk, "name": job.name, "status": job.status},
        "refusal_setting": job.refusal,
        "rounds": round_counts(facts),
        "categories": category_counts(facts),
        "final_labels": label_counts(facts),
        "refused_share": asdict(share),
        "lengths": {"basis": basis, **lengths},
        "near_duplicate_rate": {
            "basis": basis,
            "threshold": job.near_duplicate_threshold,
            "rate": near_duplicate_rate(texts, threshold=job.near_duplicate_threshold)
            if texts
            else None,
            "n": len(texts),
        },
        "prompt_set": (
            {"id": job.prompt_set_id, "name": job.prompt_set.name} if job.prompt_set else None
        ),
        "false_refusal": {
            "targets": targets,
            "run": (
                {
                    "id": run.pk,
                    "status": run.status,
                    "progress": frr_selectors.run_progress(run),
                    "rates": new_rates,
                }
                if run is not None
                else None
            ),
            "reference": (
                {
                    "prompt_set": {"id": reference.pk, "name": reference.name},
                    "runs": {m: r["run"] for m, r in ref.items()},
                    "rates": [{"model": m, "groups": r["groups"]} for m, r in ref.items()],
                }
                if reference is not None
                else None
            ),
            "side_by_side": side_by_side(
                targets, new_rates, {m: r["groups"] for m, r in ref.items()}
            ),
        },
    }


def verification_rows(job: PseudoHarmfulJob) -> list[dict]:
    """The finalise page's rows: each verified candidate with the coders' outcome so far."""
    task = CodingTask.objects.filter(pk=job.verification_task_id).first()
    if task is None:
        return []
    outcomes = verification_outcomes(task)
    return [
        {"candidate": c, "outcome": outcomes[source_key(c)], "key": source_key(c)}
        for c in verified_candidates(job, outcomes)
    ]
