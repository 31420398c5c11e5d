"""Simulation-based power of the crossed mixed model for a planned design (pure, no Django)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import linalg, special
from threadpoolctl import threadpool_limits

from studies.analysis.common import ordered_levels
from studies.analysis.crossed import CrossedFitError, CrossedModel
from studies.analysis.mixed import _build_terms, _independent
from studies.analysis.power.assumptions import Assumptions, PowerInputError
from studies.design import Design, QueryRef, build_plan
from studies.domain import MOTIVATION_FACTOR

RESULT_VERSION = 1
ADJUSTMENTS = ("none", "holm")
# Bounds that keep one request from occupying a worker for hours (or a typo from building a
# plan of millions of slots): 20,000 participants is the platform's plan limit.
MAX_PARTICIPANTS = 20_000
MAX_SIZES = 30
MAX_SIMULATIONS = 10_000
MAX_TOTAL_FITS = 200_000
_Z95 = 1.959963984540054
_RANGE = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(?:\.\.\.|…)\s*,\s*(\d+)\s*$")

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class PowerSettings:
    """How much to simulate: participant counts, simulations per count, the test, the seed."""

    participants: tuple[int, ...]
    simulations: int
    alpha: float = 0.05
    seed: int = 0
    adjust: str = "none"

    @property
    def total(self) -> int:
        return len(self.participants) * self.simulations


@dataclass(frozen=True)
class PlannedDesign:
    """What the plan needs: the design, the queries (with categories), topic choice, seed."""

    design: Design
    queries: tuple[QueryRef, ...]
    topic_choice: bool = False
    plan_seed: int = 0


MAX_QUERIES = 10_000


def synthetic_queries(count: int) -> tuple[QueryRef, ...]:
    """Stand-in queries (q0001, ...) in one category, for a design whose stimuli are not
    written yet: only their number matters to the model's structure."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_QUERIES:
        raise PowerInputError({"queries": f"must be a whole number from 1 to {MAX_QUERIES}"})
    return tuple(QueryRef(f"q{i:04d}", "planned") for i in range(1, count + 1))


def parse_participants(text: str) -> tuple[int, ...]:
    """'80,160,...,960' (a step written once, then '...') or '80,160,240' as counts."""
    text = str(text).strip()
    match = _RANGE.match(text)
    if match:
        first, second, last = (int(g) for g in match.groups())
        step = second - first
        if step <= 0 or last < second:
            raise PowerInputError(
                {"participants": "'a,b,...,c' needs a < b <= c (the step is b - a)"}
            )
        return tuple(range(first, last + 1, step))
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise PowerInputError(
            {
                "participants": f"expected whole numbers separated by commas, like "
                f"80,160,...,960 or 100,200,400; found {text!r}"
            }
        )
    return tuple(int(p) for p in parts)


def power_settings(
    participants: Sequence[int] | str,
    simulations: int,
    alpha: float = 0.05,
    seed: int = 0,
    adjust: str = "none",
) -> PowerSettings:
    """Validated settings; PowerInputError names each bad field."""
    problems: dict[str, str] = {}
    try:
        counts = (
            parse_participants(participants)
            if isinstance(participants, str)
            else tuple(participants)
        )
    except PowerInputError as exc:
        problems.update(exc.problems)
        counts = ()
    if counts and not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        problems["participants"] = "participant counts must be whole numbers"
    elif counts:
        if len(set(counts)) != len(counts):
            problems["participants"] = "a participant count is listed twice"
        elif len(counts) > MAX_SIZES:
            problems["participants"] = f"at most {MAX_SIZES} participant counts at once"
        elif min(counts) < 2 or max(counts) > MAX_PARTICIPANTS:
            problems["participants"] = f"each count must be between 2 and {MAX_PARTICIPANTS}"
    elif "participants" not in problems:
        problems["participants"] = "give at least one participant count"
    if isinstance(simulations, bool) or not isinstance(simulations, int):
        problems["simulations"] = "must be a whole number"
    elif not 10 <= simulations <= MAX_SIMULATIONS:
        problems["simulations"] = f"must be between 10 and {MAX_SIMULATIONS}"
    elif counts and len(counts) * simulations > MAX_TOTAL_FITS:
        problems["simulations"] = (
            f"{len(counts)} counts × {simulations} simulations is more than "
            f"{MAX_TOTAL_FITS:,} model fits; use fewer"
        )
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        problems["alpha"] = "must be a number between 0 and 0.5 (e.g. 0.05)"
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        problems["seed"] = "must be a whole number from 0 to 4294967295"
    if adjust not in ADJUSTMENTS:
        problems["adjust"] = f"must be one of {', '.join(ADJUSTMENTS)}"
    if problems:
        raise PowerInputError(problems)
    return PowerSettings(tuple(sorted(counts)), simulations, float(alpha), seed, adjust)


# --- the simulated data's structure ---------------------------------------------------------


def plan_frame(planned: PlannedDesign, n_participants: int, rng: np.random.Generator):
    """One row per rated item of the plan for ``n_participants``: the real plan's structure.

    With topic choice the plan gives each item a category, and the participant picks one of
    its topics: here a topic drawn at random among the category's queries, never the same
    query twice for a participant (as the topic list offers only unseen topics).
    """
    try:
        slots = build_plan(
            planned.design,
            planned.queries,
            n_participants,
            seed=planned.plan_seed,
            topic_choice=planned.topic_choice,
        )
    except ValueError as exc:
        raise PowerInputError({"design": str(exc)}) from None
    by_category: dict[str, list[str]] = {}
    for q in sorted(planned.queries, key=lambda q: q.query_id):
        by_category.setdefault(q.category, []).append(q.query_id)
    records = []
    for slot in slots:
        offer = {c: list(rng.permutation(ids)) for c, ids in by_category.items()}
        for item in slot.items:
            if item.kind != "stimulus":
                continue  # attention checks are not modelled
            query_id = item.query_id if item.query_id is not None else offer[item.category].pop()
            records.append(
                {
                    "participant": slot.index,
                    "query_id": query_id,
                    "response_type": item.response_type,
                    "motivation": item.motivation or None,
                    **{k: v for k, v in item.levels.items() if k == "alignment"},
                }
            )
    return pd.DataFrame.from_records(records)


@dataclass
class SizeModel:
    """Everything about one participant count that does not depend on the simulated ratings."""

    n_participants: int
    participant: np.ndarray
    query: np.ndarray
    n_queries: int
    mean: np.ndarray
    terms: list[str]
    term_types: list[str | None]
    tested: list[int]
    model: CrossedModel
    notes: list[str]
    frame: pd.DataFrame

    @property
    def n_ratings(self) -> int:
        return len(self.mean)


def _true_mean(frame: pd.DataFrame, a: Assumptions) -> np.ndarray:
    types = frame["response_type"].to_numpy()
    mean = np.full(len(frame), float(a.intercept))
    mean += np.array([a.response_type.get(t, 0.0) for t in types])
    if "motivation" in frame and frame["motivation"].notna().any():
        levels = frame["motivation"].to_numpy()
        mean += np.array([a.motivation.get(m, 0.0) for m in levels])
        mean += np.array(
            [a.interaction.get(t, {}).get(m, 0.0) for t, m in zip(types, levels, strict=True)]
        )
    return mean


def size_model(
    planned: PlannedDesign, a: Assumptions, n_participants: int, rng: np.random.Generator
) -> SizeModel:
    """The plan, the analysis's own fixed-effect columns and the crossed model for one size."""
    frame = plan_frame(planned, n_participants, rng)
    types = ordered_levels("response_type", frame["response_type"])
    if a.reference_level not in types:
        raise PowerInputError(
            {
                "reference_level": f"{a.reference_level} is never shown in this design "
                f"(it shows {', '.join(types)})"
            }
        )
    unknown = sorted(set(a.response_type) - set(types))
    notes = []
    if unknown:
        notes.append(f"effects given for types this design never shows: {', '.join(unknown)}")
    # The same columns as the analysis (studies.analysis.mixed): treatment coding against the
    # reference, motivation and its interactions with type, alignment unless confounded.
    use_motivation = MOTIVATION_FACTOR in frame and frame[MOTIVATION_FACTOR].nunique() > 1
    use_alignment = "alignment" in frame and frame["alignment"].nunique() > 1
    terms, _, _ = _build_terms(frame, a.reference_level, use_motivation, use_alignment)
    kept, _ = _independent(terms)
    X = np.column_stack([t.column for t in kept])
    participant = frame["participant"].to_numpy(dtype=np.int64)
    query, query_ids = pd.factorize(frame["query_id"])
    factors = {"participant": participant, "query": query.astype(np.int64)}
    if len(query_ids) < 2:
        del factors["query"]
    return SizeModel(
        n_participants=n_participants,
        participant=participant,
        query=query.astype(np.int64),
        n_queries=len(query_ids),
        mean=_true_mean(frame, a),
        terms=[t.name for t in kept],
        term_types=[t.response_type for t in kept],
        tested=[i for i, t in enumerate(kept) if t.response_type is not None],
        model=CrossedModel(X, factors),
        notes=notes,
        frame=frame,
    )


def simulate_ratings(sm: SizeModel, a: Assumptions, rng: np.random.Generator) -> np.ndarray:
    """One data set: mean + participant and query intercepts + noise, rounded and clipped to
    the scale when ``a.points`` is set (rounding adds about 1/12 to the residual variance and
    clipping pulls means near the ends inwards, as people's answers do)."""
    y = sm.mean + a.sd_participant * rng.standard_normal(sm.n_participants)[sm.participant]
    y += a.sd_query * rng.standard_normal(sm.n_queries)[sm.query]
    y += a.sd_residual * rng.standard_normal(sm.n_ratings)
    if a.points is not None:
        y = np.clip(np.rint(y), 1, a.points)
    return y


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (as statsmodels' multipletests 'holm')."""
    m = len(p)
    order = np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible at 0 and 1, unlike p ± 1.96 SE)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = _Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def simulate_size(
    sm: SizeModel,
    a: Assumptions,
    settings: PowerSettings,
    rng: np.random.Generator,
    on_fit: Callable[[], None] | None = None,
) -> dict:
    """Fit the crossed model to ``settings.simulations`` simulated data sets of one size."""
    n_tests = len(sm.tested)
    rejected = np.zeros((settings.simulations, n_tests), dtype=bool)
    estimates = np.full((settings.simulations, n_tests), np.nan)
    vcomp = np.full((settings.simulations, 3), np.nan)
    failed = not_converged = 0
    resid = max(a.sd_residual, 1e-3)
    # Starting at the assumed SD ratios saves iterations; REML's optimum does not depend on it.
    start = np.array([a.sd_participant / resid] + [a.sd_query / resid] * (sm.n_queries > 1))
    start = np.maximum(start, 0.05)
    idx = np.array(sm.tested, dtype=int)
    # The criterion's curvature hardly changes between data sets of one design: measured once
    # at the first fit's optimum, it lets every later fit converge in a few evaluations.
    hessian = None
    for s in range(settings.simulations):
        y = simulate_ratings(sm, a, rng)
        try:
            fit = sm.model.fit(y, start, hessian)
            if hessian is None and fit.converged:
                hessian = sm.model.hessian_at(fit.theta)
        except (CrossedFitError, np.linalg.LinAlgError, linalg.LinAlgError, ValueError):
            failed += 1  # counts as "not significant": power is never flattered by failures
        else:
            not_converged += not fit.converged
            se = np.sqrt(np.diag(fit.cov_fe)[idx])
            z = fit.fe_params[idx] / se
            p = 2.0 * special.ndtr(-np.abs(z))
            if settings.adjust == "holm" and n_tests:
                p = holm(p)
            rejected[s] = p < settings.alpha
            estimates[s] = fit.fe_params[idx]
            vcomp[s] = (
                fit.vcomp.get("participant", np.nan),
                fit.vcomp.get("query", np.nan),
                fit.scale,
            )
        if on_fit is not None:
            on_fit()
    n = settings.simulations
    rows = []
    for j, i in enumerate(sm.tested):
        hits = int(rejected[:, j].sum())
        power = hits / n
        low, high = wilson(hits, n)
        term = sm.terms[i]
        rows.append(
            {
                "participants": sm.n_participants,
                "term": term,
                "response_type": sm.term_types[i],
                "kind": "interaction" if ":" in term else "main",
                "power": power,
                "mc_se": math.sqrt(power * (1 - power) / n),
                "ci_low": low,
                "ci_high": high,
                "mean_estimate": _mean(estimates[:, j]),
                "simulations": n,
                "failed": failed,
            }
        )
    return {
        "participants": sm.n_participants,
        "ratings": sm.n_ratings,
        "queries": sm.n_queries,
        "rows": rows,
        "failed": failed,
        "not_converged": not_converged,
        "mean_variance_components": {
            "participant": _mean(vcomp[:, 0]),
            "query": _mean(vcomp[:, 1]),
            "residual": _mean(vcomp[:, 2]),
        },
    }


def _mean(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def true_effects(a: Assumptions, term: str, response_type: str | None) -> float | None:
    """The assumed value of a model term (None for a term the assumptions do not name)."""
    if response_type is None:
        return None
    if ":" in term:
        level = term.split("motivation[", 1)[1].rstrip("]")
        return a.interaction.get(response_type, {}).get(level, 0.0)
    return a.response_type.get(response_type, 0.0)


def _between_cells(design: Design) -> int:
    return max(1, math.prod(len(f.levels) for f in design.factors if f.assignment == "between"))


def _streams(seed: int, n: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The plan's query draws and the simulations: their own streams per count, so a count's
    numbers do not change when other counts are added."""
    return np.random.default_rng([seed, n, 0]), np.random.default_rng([seed, n, 1])


def simulated_data_sets(
    planned: PlannedDesign, a: Assumptions, settings: PowerSettings, n_participants: int
):
    """(the plan's rows, ratings) of each data set ``run_power`` fits at this count, in order:
    for checking its fits against another implementation on the very same data."""
    plan_rng, rng = _streams(settings.seed, n_participants)
    sm = size_model(planned, a, n_participants, plan_rng)
    for _ in range(settings.simulations):
        yield sm.frame, simulate_ratings(sm, a, rng)


def _run_sizes(
    planned: PlannedDesign, a: Assumptions, settings: PowerSettings, tick: Callable[[], None]
) -> tuple[list[dict], list[str]]:
    sizes: list[dict] = []
    notes: list[str] = []
    n_between = _between_cells(planned.design)
    for n in settings.participants:
        plan_rng, rng = _streams(settings.seed, n)
        sm = size_model(planned, a, n, plan_rng)
        notes += [note for note in sm.notes if note not in notes]
        if n % n_between:
            notes.append(
                f"{n} participants do not fill the {n_between} between-participant cells "
                "equally; the plan balances them to within one"
            )
        sizes.append(simulate_size(sm, a, settings, rng, tick))
    return sizes, notes


def run_power(
    planned: PlannedDesign,
    a: Assumptions,
    settings: PowerSettings,
    progress: ProgressCallback | None = None,
) -> dict:
    """Power per response-type term at each participant count: a JSON-ready result.

    Seeded per (seed, participant count): a count's numbers do not change when other counts
    are added. A failed fit counts as not significant and is reported in ``failed``.
    """
    started = time.perf_counter()
    done = 0
    total = settings.total

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    # One BLAS thread: each solve is a 26 x 26 system, where waking threads costs more than
    # it saves (several times slower on a busy 2-core host).
    with threadpool_limits(limits=1, user_api="blas"):
        sizes, notes = _run_sizes(planned, a, settings, tick)
    rows = [row for size in sizes for row in size["rows"]]
    for row in rows:
        row["true_effect"] = true_effects(a, row["term"], row["response_type"])
    return {
        "version": RESULT_VERSION,
        "measure": a.measure,
        "reference_level": a.reference_level,
        "assumptions": a.to_dict(),
        "settings": {
            "participants": list(settings.participants),
            "simulations": settings.simulations,
            "alpha": settings.alpha,
            "seed": settings.seed,
            "adjust": settings.adjust,
        },
        "design": {
            "items_per_participant": planned.design.items_per_participant,
            "between_cells": _between_cells(planned.design),
            "queries": len({q.query_id for q in planned.queries}),
            "topic_choice": planned.topic_choice,
            "factors": [
                {"name": f.name, "levels": list(f.levels), "assignment": f.assignment}
                for f in planned.design.factors
            ],
        },
        "model": "value ~ response_type * motivation (+ alignment) + (1|participant_id) + "
        "(1|query_id), REML; two-sided z-tests as in the analysis",
        "terms": [
            {
                "term": r["term"],
                "response_type": r["response_type"],
                "kind": r["kind"],
                "true_effect": r["true_effect"],
            }
            for r in (sizes[0]["rows"] if sizes else [])
        ],
        "rows": rows,
        "sizes": [{k: v for k, v in size.items() if k != "rows"} for size in sizes],
        "notes": notes,
        "timings": {"total_s": round(time.perf_counter() - started, 3)},
    }
