"""Pure statistics of reward scores: per response type (raw and z-scored within a scorer) and
their agreement with mean human ratings per stimulus (Spearman, Kendall, pairwise order)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


def zscores(values: Sequence[float]) -> list[float | None]:
    """(x − mean) / SD over all of one scorer's scores, with the population SD (ddof=0: the
    scores are every stimulus the scorer rated, not a sample of them). None for every value
    when there are fewer than two or they are all equal (no spread to scale by)."""
    array = np.asarray(values, dtype=float)
    if array.size < 2:
        return [None] * array.size
    sd = float(array.std(ddof=0))
    if sd == 0 or not math.isfinite(sd):
        return [None] * array.size
    return [float(v) for v in (array - array.mean()) / sd]


def _mean_sd(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    array = np.asarray(values, dtype=float)
    sd = float(array.std(ddof=1)) if array.size > 1 else None
    return float(array.mean()), sd


def by_response_type(
    rows: Iterable[tuple[str, float]], order: Sequence[str] = ()
) -> list[dict[str, object]]:
    """Per response type: n, mean and SD (ddof=1) of the raw scores and of the z-scores, where
    z is taken over all the given rows together (one scorer's every score).

    ``rows``: (response_type, score). Types in ``order`` come first, in that order, the rest
    alphabetically; a type in ``order`` without rows is left out.
    """
    rows = list(rows)
    z = zscores([score for _, score in rows])
    raw_by: dict[str, list[float]] = {}
    z_by: dict[str, list[float]] = {}
    for (response_type, score), z_value in zip(rows, z, strict=True):
        raw_by.setdefault(response_type, []).append(float(score))
        if z_value is not None:
            z_by.setdefault(response_type, []).append(z_value)
    types = [t for t in order if t in raw_by] + sorted(t for t in raw_by if t not in order)
    result = []
    for response_type in types:
        mean, sd = _mean_sd(raw_by[response_type])
        z_mean, z_sd = _mean_sd(z_by.get(response_type, []))
        result.append(
            {
                "response_type": response_type,
                "n": len(raw_by[response_type]),
                "mean": mean,
                "sd": sd,
                "z_mean": z_mean,
                "z_sd": z_sd,
            }
        )
    return result


@dataclass(frozen=True)
class PairwiseAgreement:
    """How often a scorer orders two stimuli the way people's mean ratings do.

    Every unordered pair of stimuli is one of: ``human_ties`` (equal mean ratings: no order to
    agree with), else ``reward_ties`` (people order them, the scores are equal), else compared.
    Tied pairs of either kind are excluded; ``agreement`` = ``agree`` / ``compared`` (None when
    nothing is compared). ``pairs`` = all of them, so the exclusions stay visible.
    """

    pairs: int
    compared: int
    agree: int
    human_ties: int
    reward_ties: int

    @property
    def agreement(self) -> float | None:
        return self.agree / self.compared if self.compared else None


def pairwise_agreement(reward: Sequence[float], human: Sequence[float]) -> PairwiseAgreement:
    """Pairwise order agreement of two equally long sequences, index i = stimulus i."""
    r = np.asarray(reward, dtype=float)
    h = np.asarray(human, dtype=float)
    if r.shape != h.shape:
        raise ValueError("reward and human must have one value per stimulus each")
    upper = np.triu_indices(r.size, k=1)
    dr = np.sign(r[:, None] - r[None, :])[upper]
    dh = np.sign(h[:, None] - h[None, :])[upper]
    human_ties = int(np.count_nonzero(dh == 0))
    reward_ties = int(np.count_nonzero((dh != 0) & (dr == 0)))
    compared_mask = (dh != 0) & (dr != 0)
    agree = int(np.count_nonzero(compared_mask & (dh == dr)))
    return PairwiseAgreement(
        pairs=int(dr.size),
        compared=int(np.count_nonzero(compared_mask)),
        agree=agree,
        human_ties=human_ties,
        reward_ties=reward_ties,
    )


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def correlation(reward: Sequence[float], human: Sequence[float]) -> dict[str, object]:
    """Spearman's ρ and Kendall's τ-b (ties handled as scipy.stats does: average ranks, τ-b)
    with their two-sided p-values, and the pairwise agreement, for one value per stimulus.

    Coefficients are None with fewer than three stimuli or when either side has no spread.
    """
    reward = [float(v) for v in reward]
    human = [float(v) for v in human]
    if len(reward) != len(human):
        raise ValueError("reward and human must have one value per stimulus each")
    n = len(reward)
    pairwise = pairwise_agreement(reward, human)
    result: dict[str, object] = {
        "n": n,
        "spearman": None,
        "spearman_p": None,
        "kendall": None,
        "kendall_p": None,
        "pairs": pairwise.pairs,
        "pairs_compared": pairwise.compared,
        "pairs_agree": pairwise.agree,
        "human_ties": pairwise.human_ties,
        "reward_ties": pairwise.reward_ties,
        "pairwise_agreement": pairwise.agreement,
    }
    if n < 3 or len(set(reward)) < 2 or len(set(human)) < 2:
        return result
    rho = stats.spearmanr(reward, human)
    tau = stats.kendalltau(reward, human)
    result.update(
        spearman=_finite(rho.statistic),
        spearman_p=_finite(rho.pvalue),
        kendall=_finite(tau.statistic),
        kendall_p=_finite(tau.pvalue),
    )
    return result


def matched(
    reward: Mapping[object, float], human: Mapping[object, float]
) -> tuple[list[object], list[float], list[float]]:
    """The stimuli both sides have, in a stable order: (keys, reward values, human values)."""
    keys = sorted(set(reward) & set(human), key=repr)
    return keys, [reward[k] for k in keys], [human[k] for k in keys]
