"""The Wilson score interval of a proportion, shared by the model lab's rates and shares."""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_interval(count: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of ``count`` successes out of ``n`` (n ≥ 1).

    Same as statsmodels' ``proportion_confint(count, n, method="wilson")``; unlike the normal
    approximation it stays inside [0, 1] and is not degenerate at 0 or n (a model that never
    chooses partial compliance still gets an interval of non-zero width).
    """
    if n < 1:
        raise ValueError("a Wilson interval needs at least one observation")
    if not 0 <= count <= n:
        raise ValueError(f"count must be between 0 and n ({n}), not {count}")
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = count / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At p = 0 (or 1) the bound is exactly 0 (or 1); rounding would leave it a hair off.
    low = 0.0 if count == 0 else max(0.0, centre - half)
    high = 1.0 if count == n else min(1.0, centre + half)
    return low, high
