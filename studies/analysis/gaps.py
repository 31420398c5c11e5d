"""Relative reduction of the gap to the reference response type, with a participant bootstrap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from studies.analysis.common import num, ordered_levels

# Bootstrap weights are drawn this many cells (replicates x participants) at a time, which
# bounds memory (8 bytes a cell) whatever the number of participants or replicates.
_CHUNK_CELLS = 4_000_000
# A percentile CI needs most replicates to define the ratio; below this share it is withheld.
_MIN_FINITE_SHARE = 0.9


def _reduction(ref: np.ndarray, base: np.ndarray, typ: np.ndarray, tol: float) -> np.ndarray:
    """1 - (ref - type) / (ref - baseline), NaN where the baseline gap is about zero."""
    gap = ref - base
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - (ref - typ) / gap
    return np.where(np.abs(gap) > tol, out, np.nan)


def _bootstrap_weights(n: int, reps: int, seed: int):
    """Yield chunks of (replicates x n) counts: how often each participant is drawn."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // max(n, 1))
    done = 0
    while done < reps:
        b = min(per_chunk, reps - done)
        # Index resampling with replacement, tallied per replicate: the multinomial counts.
        draws = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        yield np.bincount(draws.ravel(), minlength=b * n).reshape(b, n).astype(float)
        done += b


def gap_reductions(
    df: pd.DataFrame,
    measures: Sequence[str],
    reference: str = "full_compliance",
    baseline: str = "direct_refusal",
    reps: int = 1000,
    seed: int = 0,
) -> tuple[list[dict], list[str]]:
    """Gap-reduction rows per measure x response type (not reference or baseline) and warnings.

    Means are cell means over ratings. The CI is the percentile interval of the same ratio
    over ``reps`` resamples of participants with replacement (each resample keeps all of a
    participant's ratings); the resamples are shared by all measures and seeded.
    """
    warnings: list[str] = []
    data = df[df["question"].isin(list(measures))]
    types = ordered_levels("response_type", data["response_type"])
    for level, role in ((reference, "reference"), (baseline, "baseline")):
        if level not in types:
            warnings.append(
                f"{role} level {level} has no ratings, so gap reductions cannot be computed"
            )
    # A rating without a response type has no cell; left in, its NaN code would turn the
    # integer cell codes into floats (np.bincount then refuses them). With no ratings at all,
    # pandas' map returns an empty float array for the same reason: nothing to count.
    data = data[data["response_type"].isin(types)]
    # Sorted ids, so the resamples do not depend on the order of the rows.
    ids = data["participant_id"]
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        ids = ids.astype(str)  # a categorical of text ids already sorts as text
    p_codes, participants = pd.factorize(ids, sort=True)
    m_index = {m: i for i, m in enumerate(measures)}
    t_index = {t: i for i, t in enumerate(types)}
    n_p, n_m, n_t = len(participants), len(measures), len(types)
    # Per participant: sum and count of ratings for each (measure, type) cell.
    cell = data["question"].map(m_index).to_numpy(dtype=np.int64) * n_t + data["response_type"].map(
        t_index
    ).to_numpy(dtype=np.int64)
    flat = p_codes.astype(np.int64) * (n_m * n_t) + cell
    size = n_p * n_m * n_t
    sums = np.bincount(flat, weights=data["value"].to_numpy(dtype=float), minlength=size)
    counts = np.bincount(flat, minlength=size).astype(float)
    sums = sums.reshape(n_p, n_m * n_t)
    counts = counts.reshape(n_p, n_m * n_t)
    # Participants with at least one rating of each measure: the claims rules read this.
    per_measure = (counts.reshape(n_p, n_m, n_t).sum(axis=2) > 0).sum(axis=0)

    rows: list[dict] = []
    targets: list[tuple[int, int, int, int]] = []  # (row, ref column, base column, type column)
    gap_targets: list[tuple[int, int, int]] = []  # (row, ref column, base column)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums.sum(axis=0) / counts.sum(axis=0)
    sds = data.groupby("question", observed=True)["value"].std(ddof=0)
    for m in measures:
        present = {t for t in types if counts[:, m_index[m] * n_t + t_index[t]].sum() > 0}
        for t in types:
            if t in (reference, baseline):
                continue
            col = {
                lv: m_index[m] * n_t + t_index[lv]
                for lv in (reference, baseline, t)
                if lv in t_index
            }
            ref_mean = num(means[col[reference]]) if reference in present else None
            base_mean = num(means[col[baseline]]) if baseline in present else None
            type_mean = num(means[col[t]]) if t in present else None
            row = {
                "measure": m,
                "response_type": t,
                "reference_mean": ref_mean,
                "baseline_mean": base_mean,
                "type_mean": type_mean,
                "reduction": None,
                "ci_low": None,
                "ci_high": None,
                "bootstrap_reps": int(reps),
                "gap": None,
                "gap_ci_low": None,
                "gap_ci_high": None,
                "n_participants": int(per_measure[m_index[m]]),
            }
            rows.append(row)
            if ref_mean is not None and base_mean is not None:
                row["gap"] = num(ref_mean - base_mean)
                gap_targets.append((len(rows) - 1, col[reference], col[baseline]))
            if None in (ref_mean, base_mean, type_mean):
                continue
            tol = 1e-6 * max(float(sds.get(m, 0.0) or 0.0), 1e-6)
            if abs(ref_mean - base_mean) <= tol:
                warnings.append(
                    f"{m}: {reference} and {baseline} have the same mean, so there is no gap "
                    "to reduce"
                )
                continue
            row["reduction"] = num(
                _reduction(np.array(ref_mean), np.array(base_mean), np.array(type_mean), tol)
            )
            targets.append((len(rows) - 1, col[reference], col[baseline], col[t]))

    if gap_targets and reps > 0 and n_p > 0:
        columns = sorted({c for _, *cs in targets + gap_targets for c in cs})
        pos = {c: i for i, c in enumerate(columns)}
        S, N = sums[:, columns], counts[:, columns]
        boot = []
        for w in _bootstrap_weights(n_p, reps, seed):
            with np.errstate(divide="ignore", invalid="ignore"):
                boot.append((w @ S) / (w @ N))
        boot_means = np.vstack(boot)
        for i, ref_c, base_c in gap_targets:
            # The reference gap's own interval: a share of a gap that may be zero means nothing.
            diff = boot_means[:, pos[ref_c]] - boot_means[:, pos[base_c]]
            finite = diff[np.isfinite(diff)]
            if finite.size >= _MIN_FINITE_SHARE * reps:
                rows[i]["gap_ci_low"] = num(np.percentile(finite, 2.5))
                rows[i]["gap_ci_high"] = num(np.percentile(finite, 97.5))
        for i, ref_c, base_c, typ_c in targets:
            m = rows[i]["measure"]
            tol = 1e-6 * max(float(sds.get(m, 0.0) or 0.0), 1e-6)
            ratio = _reduction(
                boot_means[:, pos[ref_c]],
                boot_means[:, pos[base_c]],
                boot_means[:, pos[typ_c]],
                tol,
            )
            finite = ratio[np.isfinite(ratio)]
            if finite.size >= _MIN_FINITE_SHARE * reps:
                rows[i]["ci_low"] = num(np.percentile(finite, 2.5))
                rows[i]["ci_high"] = num(np.percentile(finite, 97.5))
            else:
                warnings.append(
                    f"{m}, {rows[i]['response_type']}: only {finite.size} of {reps} bootstrap "
                    "resamples had a gap to reduce, so no CI"
                )
    return rows, warnings
