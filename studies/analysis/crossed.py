"""REML fit of a linear model with crossed random intercepts, linear in the number of ratings."""

# Model: y = X b + sum_k Z_k u_k + e with u_k ~ N(0, s2 t_k^2 I) and e ~ N(0, s2 I), t_k being
# the factor's SD relative to the residual SD (lme4's theta). The REML criterion comes from
# Henderson's mixed-model equations in lme4's form
#
#     [ L'Z'Z L + I    L'Z'X ] [v]   [L'Z'y]
#     [ X'Z L          X'X   ] [b] = [X'y  ]
#
# The largest factor's block (participants: thousands of levels) is diagonal and is absorbed
# analytically, leaving a dense system the size of the other factors' levels plus the fixed
# effects (16 queries + ~10 terms here). After one O(n m) pass over the data an evaluation
# costs O(m^3), so 100,000 ratings fit in well under a second. statsmodels' MixedLM fits the
# same model (one group, one variance component per factor) but its score and Hessian solve
# once per participant column, quadratic in participants: 11-19 s for 3,840 ratings here and
# out of memory at 100,000. tests/analysis/test_mixed.py checks that both give the same fit.

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy import linalg, optimize, sparse


@dataclass
class CrossedFit:
    """Estimates of one crossed random-intercept fit (variances on the data's scale)."""

    fe_params: np.ndarray
    cov_fe: np.ndarray
    scale: float
    vcomp: dict[str, float]
    converged: bool
    message: str
    reml_deviance: float
    boundary: list[str] = field(default_factory=list)


class CrossedFitError(RuntimeError):
    """The crossed model cannot be fitted to these data (singular system, no residual df)."""


def _indicator(codes: np.ndarray, levels: int) -> sparse.csr_array:
    """Sparse n x levels 0/1 matrix with a single 1 per row at ``codes``."""
    n = len(codes)
    return sparse.csr_array(
        (np.ones(n), (np.arange(n), codes)),
        shape=(n, levels),
    )


class _Criterion:
    """Pre-computed cross products and the REML deviance as a function of theta."""

    def __init__(self, y: np.ndarray, X: np.ndarray, factors: Mapping[str, np.ndarray]):
        self.n, self.p = X.shape
        if self.n <= self.p:
            raise CrossedFitError(f"{self.n} ratings cannot estimate {self.p} fixed effects")
        names = list(factors)
        levels = {name: int(np.max(codes)) + 1 for name, codes in factors.items()}
        # The factor with most levels is absorbed; the others stay in the dense block.
        self.big = max(names, key=lambda name: levels[name])
        self.small = [name for name in names if name != self.big]
        self.names = [self.big, *self.small]
        W = np.hstack([_indicator(factors[k], levels[k]).toarray() for k in self.small] + [X])
        self.small_sizes = [levels[k] for k in self.small]
        self.q_small = sum(self.small_sizes)
        self.m = W.shape[1]
        self.WtW = W.T @ W
        self.Wty = W.T @ y
        self.yty = float(y @ y)
        Zb = _indicator(factors[self.big], levels[self.big])
        counts = np.asarray(Zb.sum(axis=0)).ravel()
        G = np.asarray(Zb.T @ W)
        zy = np.asarray(Zb.T @ y).ravel()
        # Absorbing the big block weights each level by 1 / (t^2 * count + 1), which depends
        # on the level only through its rating count. Summing the cross products per distinct
        # count once makes each evaluation independent of the number of participants.
        self.counts, group, self.group_sizes = np.unique(
            counts, return_inverse=True, return_counts=True
        )
        self.GtG = np.zeros((len(self.counts), self.m, self.m))
        self.Gtz = np.zeros((len(self.counts), self.m))
        self.ztz = np.zeros(len(self.counts))
        for g in range(len(self.counts)):
            rows = group == g
            self.GtG[g] = G[rows].T @ G[rows]
            self.Gtz[g] = G[rows].T @ zy[rows]
            self.ztz[g] = zy[rows] @ zy[rows]

    def _system(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Absorbed system matrix A, right-hand side h, log det of the big block, y-part of r2."""
        tb2 = theta[0] * theta[0]
        s = np.ones(self.m)
        start = 0
        for t, size in zip(theta[1:], self.small_sizes, strict=True):
            s[start : start + size] = t
            start += size
        w = tb2 / (tb2 * self.counts + 1.0)
        ss = np.outer(s, s)
        A = (self.WtW - np.tensordot(w, self.GtG, axes=1)) * ss
        A[np.arange(self.q_small), np.arange(self.q_small)] += 1.0
        h = s * (self.Wty - w @ self.Gtz)
        r2_big = self.yty - float(w @ self.ztz)
        logdet_big = float(self.group_sizes @ np.log(tb2 * self.counts + 1.0))
        return A, h, logdet_big, r2_big

    def solve(self, theta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, float]:
        """REML deviance, fixed effects, their unscaled covariance and the residual variance."""
        A, h, logdet_big, r2_big = self._system(theta)
        # The system is positive definite exactly when X has full column rank.
        chol = linalg.cho_factor(A, lower=True, check_finite=True)
        sol = linalg.cho_solve(chol, h)
        r2 = r2_big - float(h @ sol)
        dof = self.n - self.p
        if not r2 > 0:
            raise CrossedFitError("the model fits the ratings exactly; no residual variance")
        logdet = logdet_big + 2.0 * float(np.log(np.diag(chol[0])).sum())
        deviance = logdet + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
        fe = sol[self.q_small :]
        inv = linalg.cho_solve(chol, np.eye(self.m))[self.q_small :, self.q_small :]
        return deviance, fe, inv, r2 / dof

    def deviance(self, theta: np.ndarray) -> float:
        """REML deviance (-2 log restricted likelihood); +inf where the system breaks down."""
        try:
            return self.solve(theta)[0]
        except (np.linalg.LinAlgError, CrossedFitError, ValueError):
            return np.inf


def fit_crossed_reml(
    y: np.ndarray,
    X: np.ndarray,
    factors: Mapping[str, np.ndarray],
    start: float = 1.0,
) -> CrossedFit:
    """REML fit of ``y ~ X`` with one random intercept per entry of ``factors`` (integer codes).

    Raises CrossedFitError (or LinAlgError) when the fit is impossible: no factor, a
    rank-deficient X, no residual degrees of freedom or a non-finite criterion.
    """
    if not factors:
        raise CrossedFitError("no random factor to fit")
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    codes = {name: np.asarray(c, dtype=np.int64) for name, c in factors.items()}
    crit = _Criterion(y, X, codes)
    k = len(crit.names)
    x0 = np.full(k, start)
    if not np.isfinite(crit.deviance(x0)):
        raise CrossedFitError("the REML criterion is not finite at the starting values")
    # Bounded at 0: a variance on the boundary is a legitimate REML answer, not a failure.
    res = optimize.minimize(
        crit.deviance,
        x0,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * k,
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-7},
    )
    if not res.success:
        # L-BFGS-B can stop on a flat stretch of the criterion; Nelder-Mead from where it
        # stopped (on |theta|, which has the same criterion) settles whether it is an optimum.
        retry = optimize.minimize(
            lambda t: crit.deviance(np.abs(t)),
            res.x,
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2000},
        )
        if retry.success and retry.fun <= res.fun + 1e-8:
            res = retry
            res.x = np.abs(res.x)
    theta = np.asarray(res.x, dtype=float)
    deviance, fe, inv, scale = crit.solve(theta)
    if not (np.isfinite(deviance) and np.all(np.isfinite(fe)) and np.all(np.isfinite(inv))):
        raise CrossedFitError("the fit produced non-finite estimates")
    vcomp = {name: float(scale * t * t) for name, t in zip(crit.names, theta, strict=True)}
    # A relative SD this small means the factor's variance sits at zero.
    boundary = [name for name, t in zip(crit.names, theta, strict=True) if t < 1e-4]
    return CrossedFit(
        fe_params=fe,
        cov_fe=scale * inv,
        scale=float(scale),
        vcomp=vcomp,
        converged=bool(res.success),
        message=str(res.message),
        reml_deviance=float(deviance),
        boundary=boundary,
    )
