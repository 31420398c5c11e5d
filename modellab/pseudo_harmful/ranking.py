"""Pure arithmetic of a pseudo-harmful job: refusal shares, the ranking and the call budget.

Budget: one call is one request the pipeline decides to make to the generator (each ask of a
round, a re-ask after an answer that is not a JSON array included) or to a target (one probe:
sample i of k of one target for one candidate, however many transport retries it needed).
Judge calls (llm_judge labelling of target responses, the harmfulness judge) and embedding
calls are not counted: the issue counts the budget in generator and target calls, and the
judges' work is bounded by the probes and kept candidates the budget already bounds.

Ranking: a higher refusal share first; ties by more labelled probes (more evidence), then by
earlier position in the job (the order the generator wrote them). Candidates without a share
(no labelled probe) are not ranked.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

FULL = "full"
FULL_PARTIAL = "full_partial"


def refusal_share(*, full: int, partial: int, labelled: int, refusal: str) -> float | None:
    """Refusals over labelled probes (full refusals, or full + partial for ``full_partial``);
    None without a labelled probe (unparsed and failed probes are not in the denominator)."""
    if refusal not in (FULL, FULL_PARTIAL):
        raise ValueError(f"refusal must be {FULL!r} or {FULL_PARTIAL!r}, not {refusal!r}")
    if labelled <= 0:
        return None
    refusals = full + (partial if refusal == FULL_PARTIAL else 0)
    return refusals / labelled


def refusals(*, full: int, partial: int, refusal: str) -> int:
    """How many probes count as refusals under the job's setting."""
    return full + (partial if refusal == FULL_PARTIAL else 0)


@dataclass(frozen=True)
class Standing:
    """What ranking reads of one candidate."""

    key: int  # the candidate's id
    share: float | None
    labelled: int
    position: int


def rank(standings: Iterable[Standing]) -> dict[int, int | None]:
    """Rank 1 = highest share; ties: more labelled probes, then earlier position. Every key
    is in the result; those without a share get None."""
    standings = list(standings)
    ranked = sorted(
        (s for s in standings if s.share is not None),
        key=lambda s: (-s.share, -s.labelled, s.position),
    )
    result: dict[int, int | None] = {s.key: None for s in standings}
    for number, standing in enumerate(ranked, 1):
        result[standing.key] = number
    return result


def probes_per_candidate(targets: int, samples: int) -> int:
    """Target calls one candidate costs: each target answers it k times."""
    return targets * samples


def affordable_candidates(*, remaining: int, per_round: int, targets: int, samples: int) -> int:
    """How many candidates a round may ask for when one generator call (this one) and every
    candidate's probes must fit in the ``remaining`` budget; 0 means the budget is spent."""
    if remaining < 1:
        return 0
    return max(0, min(per_round, (remaining - 1) // probes_per_candidate(targets, samples)))


def minimum_budget(*, targets: int, samples: int) -> int:
    """The smallest budget that pays for one round with one candidate."""
    return 1 + probes_per_candidate(targets, samples)
