"""What the intervals support: the rules every rendering follows before it words a finding.

The thresholds are documented in REPORT_FORMAT.md ("What a headline may say") and on the
results page; change them there too.
"""

from __future__ import annotations

import math
from typing import Any

# A share of a gap is reported only with at least this many participants on the measure: below
# it the participant bootstrap behind every interval is too coarse to trust (three participants
# have only ten distinct resamples).
MIN_PARTICIPANTS = 30
# A share of the gap outside this range is not a finding but a symptom of a tiny denominator:
# -100% (twice as far from the reference as the baseline) to 200% (as far beyond it). A
# reported share needs its whole 95% interval inside it.
PLAUSIBLE_REDUCTION = (-1.0, 2.0)
# "What matters most" names a factor only when its mean eta squared reaches Cohen's "small".
MIN_ETA_SQUARED = 0.01

# Gap-reduction statuses, in the order a reader needs them explained.
REPORTED = "reported"
TOO_FEW = "too_few_participants"
NO_CLEAR_GAP = "no_clear_gap"
TOO_UNCERTAIN = "too_uncertain"
NOT_ESTIMABLE = "not_estimable"


def number(value: Any) -> float | None:
    """A finite float or None (bools, None, NaN, inf and non-numbers are None)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def excludes_zero(low: Any, high: Any) -> bool:
    """True when both bounds are known and the interval lies wholly on one side of 0."""
    lo, hi = number(low), number(high)
    return lo is not None and hi is not None and (lo > 0 or hi < 0)


def report_participants(report: dict) -> int:
    """The number of participants the report analysed (0 when unknown)."""
    n = number((report.get("meta") or {}).get("n_participants"))
    return int(n) if n is not None else 0


def gap_status(row: dict, n_participants: int | None = None) -> str:
    """Whether a gap-reduction row may be printed as a number, and if not, why.

    Reported only when (1) at least MIN_PARTICIPANTS participants rated the measure, (2) the
    reference gap (reference mean - baseline mean) has a 95% CI that excludes 0, and (3) the
    share and its whole 95% CI lie inside PLAUSIBLE_REDUCTION. Rows of reports computed before
    the reference gap had an interval (no gap_ci_low/gap_ci_high) are never reported.
    """
    n = number(row.get("n_participants"))
    if n is None:
        n = n_participants
    if n is None or n < MIN_PARTICIPANTS:
        return TOO_FEW
    if number(row.get("reduction")) is None and number(row.get("gap")) is None:
        return NOT_ESTIMABLE
    if not excludes_zero(row.get("gap_ci_low"), row.get("gap_ci_high")):
        return NO_CLEAR_GAP
    values = [number(row.get(k)) for k in ("reduction", "ci_low", "ci_high")]
    if any(v is None for v in values):
        return NOT_ESTIMABLE if values[0] is None else TOO_UNCERTAIN
    low, high = PLAUSIBLE_REDUCTION
    if any(not low <= v <= high for v in values):
        return TOO_UNCERTAIN
    return REPORTED


def participants_needed(n_participants: int) -> int:
    """How many more participants before gap reductions can be reported at all."""
    return max(0, MIN_PARTICIPANTS - int(n_participants))


def factor_supported(report: dict, factor: str) -> bool:
    """True when some fitted model has a term of ``factor`` whose 95% CI excludes 0 (Holm-adjusted
    p below .05 for response-type terms, which the report adjusts)."""
    for model in report.get("mixed_models") or []:
        for coef in model.get("coefficients") or []:
            term = str(coef.get("term") or "")
            if ":" in term or not term.startswith(f"{factor}["):
                continue
            if factor == "response_type":
                p_holm = number(coef.get("p_holm"))
                if p_holm is not None and p_holm < 0.05:
                    return True
            elif excludes_zero(coef.get("ci_low"), coef.get("ci_high")):
                return True
    return False
