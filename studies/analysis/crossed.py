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
from scipy import optimize, sparse
from scipy.linalg import lapack


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
    theta: np.ndarray | None = None  # the optimum: SDs relative to the residual SD


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
    """Pre-computed cross products and the REML deviance as a function of theta.

    The cross products of the design (X and the factors) are computed once; ``set_response``
    adds the few that involve y, so a power simulation refits new y on the same design
    without redoing the O(n m^2) part.
    """

    def __init__(
        self, y: np.ndarray | None, X: np.ndarray, factors: Mapping[str, np.ndarray]
    ) -> None:
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
        # For W'y: the small factors' parts are sums per level, X's part one product.
        self.small_codes = [(factors[k], levels[k]) for k in self.small]
        self.Xt = np.ascontiguousarray(X.T)
        self.small_sizes = [levels[k] for k in self.small]
        self.q_small = sum(self.small_sizes)
        self.m = W.shape[1]
        self.WtW = W.T @ W
        self.big_codes = factors[self.big]
        self.big_levels = levels[self.big]
        Zb = _indicator(factors[self.big], levels[self.big])
        counts = np.asarray(Zb.sum(axis=0)).ravel()
        self.G = np.asarray(Zb.T @ W)
        # Absorbing the big block weights each level by 1 / (t^2 * count + 1), which depends
        # on the level only through its rating count. Summing the cross products per distinct
        # count once makes each evaluation independent of the number of participants.
        self.counts, group, self.group_sizes = np.unique(
            counts, return_inverse=True, return_counts=True
        )
        self.group_rows = [group == g for g in range(len(self.counts))]
        self.GtG = np.zeros((len(self.counts), self.m, self.m))
        # Each count group's rows of G, transposed and contiguous, for the y-dependent part.
        self.group_Gt = [np.ascontiguousarray(self.G[rows].T) for rows in self.group_rows]
        for g, Gt in enumerate(self.group_Gt):
            self.GtG[g] = Gt @ Gt.T
        # Per evaluation: the weighted sum of GtG as one matrix-vector product, and each
        # column's theta entry by one index (the small factors', then 1 for X's columns).
        self.GtG_flat = self.GtG.reshape(len(self.counts), self.m * self.m)
        self.column_theta = np.repeat(np.arange(len(self.small) + 1), [*self.small_sizes, self.p])
        self.small_diagonal = np.arange(self.q_small)
        self.identity = np.eye(self.m)
        if y is not None:
            self.set_response(y)

    def set_response(self, y: np.ndarray) -> None:
        """The cross products that involve y: O(n m), the design's own are kept."""
        sums = [np.bincount(codes, weights=y, minlength=size) for codes, size in self.small_codes]
        self.Wty = np.concatenate([*sums, self.Xt @ y])
        self.yty = float(y @ y)
        zy = np.bincount(self.big_codes, weights=y, minlength=self.big_levels)
        self.Gtz = np.zeros((len(self.counts), self.m))
        self.ztz = np.zeros(len(self.counts))
        single = len(self.counts) == 1  # balanced designs: every level in the one group
        for g, (rows, Gt) in enumerate(zip(self.group_rows, self.group_Gt, strict=True)):
            z = zy if single else zy[rows]
            self.Gtz[g] = Gt @ z
            self.ztz[g] = z @ z

    def _system(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
        """Absorbed system matrix A, right-hand side h, log det of the big block, y-part of r2."""
        tb2 = theta[0] * theta[0]
        s = np.append(theta[1:], 1.0)[self.column_theta]
        w = tb2 / (tb2 * self.counts + 1.0)
        A = (self.WtW - (w @ self.GtG_flat).reshape(self.m, self.m)) * np.outer(s, s)
        A[self.small_diagonal, self.small_diagonal] += 1.0
        h = s * (self.Wty - w @ self.Gtz)
        r2_big = self.yty - float(w @ self.ztz)
        logdet_big = float(self.group_sizes @ np.log(tb2 * self.counts + 1.0))
        return A, h, logdet_big, r2_big

    def solve(
        self, theta: np.ndarray, covariance: bool = True
    ) -> tuple[float, np.ndarray, np.ndarray | None, float]:
        """REML deviance, fixed effects, their unscaled covariance (None unless
        ``covariance``: the optimiser needs only the deviance) and the residual variance."""
        A, h, logdet_big, r2_big = self._system(theta)
        # The system is positive definite exactly when X has full column rank. LAPACK is
        # called directly: the fit evaluates this thousands of times in a power analysis,
        # and scipy's wrappers cost more than the factorisation of a 26 x 26 matrix.
        if not np.isfinite(A).all():
            raise CrossedFitError("the mixed-model equations are not finite")
        chol, info = lapack.dpotrf(A, lower=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError("the mixed-model equations are not positive definite")
        sol, info = lapack.dpotrs(chol, h, lower=1)
        r2 = r2_big - float(h @ sol)
        dof = self.n - self.p
        if not r2 > 0:
            raise CrossedFitError("the model fits the ratings exactly; no residual variance")
        logdet = logdet_big + 2.0 * float(np.log(np.diag(chol)).sum())
        deviance = logdet + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
        fe = sol[self.q_small :]
        inv = None
        if covariance:
            inv = lapack.dpotrs(chol, np.eye(self.m), lower=1)[0][self.q_small :, self.q_small :]
        return deviance, fe, inv, r2 / dof

    def deviance(self, theta: np.ndarray) -> float:
        """REML deviance (-2 log restricted likelihood); +inf where the system breaks down."""
        try:
            return self.solve(theta, covariance=False)[0]
        except (np.linalg.LinAlgError, CrossedFitError, ValueError):
            return np.inf

    def deviance_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The deviance and its exact gradient in theta (+inf and 0 where it breaks down).

        With the gradient the optimiser needs a third of the evaluations finite differences
        took; tests/analysis/test_power.py checks it against finite differences.
        """
        try:
            return self._deviance_and_gradient(np.asarray(theta, dtype=float))
        except (np.linalg.LinAlgError, CrossedFitError, ValueError):
            return np.inf, np.zeros(len(theta))

    def _deviance_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        # d log det A = tr(A^-1 dA); d r2 = d r2_big - (2 dh' sol - sol' dA sol), where
        # A = M o ss (+ I on the small factors' block), M = WtW - sum_g w_g GtG_g, h = s o v.
        m = self.m
        tb = theta[0]
        tb2 = tb * tb
        s = np.append(theta[1:], 1.0)[self.column_theta]
        denom = tb2 * self.counts + 1.0
        w = tb2 / denom
        dw = 2.0 * tb / (denom * denom)
        M = self.WtW - (w @ self.GtG_flat).reshape(m, m)
        N = (dw @ self.GtG_flat).reshape(m, m)
        ss = np.outer(s, s)
        A = M * ss
        A[self.small_diagonal, self.small_diagonal] += 1.0
        v = self.Wty - w @ self.Gtz
        h = s * v
        chol, info = lapack.dpotrf(A, lower=1, clean=0)
        if info != 0:
            raise np.linalg.LinAlgError("the mixed-model equations are not positive definite")
        # One solve for h and the inverse together (the inverse feeds the trace terms).
        rhs = np.empty((m, m + 1))
        rhs[:, 0] = h
        rhs[:, 1:] = self.identity
        both, _ = lapack.dpotrs(chol, rhs, lower=1)
        sol, inv = both[:, 0], both[:, 1:]
        r2 = self.yty - float(w @ self.ztz) - float(h @ sol)
        dof = self.n - self.p
        if not r2 > 0:
            raise CrossedFitError("the model fits the ratings exactly; no residual variance")
        logdet = float(self.group_sizes @ np.log(denom)) + 2.0 * float(
            np.log(chol.diagonal()).sum()
        )
        deviance = logdet + dof * (1.0 + np.log(2.0 * np.pi * r2 / dof))
        if not np.isfinite(deviance):
            raise CrossedFitError("the REML criterion is not finite here")
        grad = np.empty(len(theta))
        ratio = dof / r2
        ssol = s * sol
        dr2 = -float(dw @ self.ztz) + 2.0 * float((s * (dw @ self.Gtz)) @ sol)
        dr2 -= float(ssol @ N @ ssol)
        grad[0] = (
            float(self.group_sizes @ (2.0 * tb * self.counts / denom))
            - float(np.sum(N * ss * inv))
            + ratio * dr2
        )
        P = M * s
        Psol = P @ sol
        trace_rows = np.sum(P * inv, axis=1)
        start = 0
        for k, size in enumerate(self.small_sizes, start=1):
            block = slice(start, start + size)
            dr2 = -2.0 * float(v[block] @ sol[block]) + 2.0 * float(sol[block] @ Psol[block])
            grad[k] = 2.0 * float(trace_rows[block].sum()) + ratio * dr2
            start += size
        return deviance, grad


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
    return CrossedModel(X, factors).fit(y, start)


class CrossedModel:
    """The crossed model on one design (X and the factors' codes), fitted to any number of y.

    ``CrossedModel(X, factors).fit(y)`` is ``fit_crossed_reml(y, X, factors)``; building it
    once and calling ``fit`` per simulated y (power analysis) skips the design's cross
    products, which cost more than the optimisation itself.
    """

    def __init__(self, X: np.ndarray, factors: Mapping[str, np.ndarray]) -> None:
        if not factors:
            raise CrossedFitError("no random factor to fit")
        X = np.asarray(X, dtype=float)
        codes = {name: np.asarray(c, dtype=np.int64) for name, c in factors.items()}
        self._crit = _Criterion(None, X, codes)

    @property
    def names(self) -> list[str]:
        """The random factors in the order of theta (the absorbed, largest one first)."""
        return list(self._crit.names)

    def fit(
        self,
        y: np.ndarray,
        start: float | np.ndarray = 1.0,
        hessian: np.ndarray | None = None,
    ) -> CrossedFit:
        """REML fit to ``y``; ``start`` is theta (SDs relative to the residual SD).

        ``hessian``: the criterion's Hessian in theta near the optimum (``hessian_at``), from
        a fit of other y on this design. A quasi-Newton search started with it then needs a
        handful of evaluations and none of scipy's set-up, which is most of the cost of a
        fit in a power simulation; should it not converge, L-BFGS-B runs as without it.
        """
        crit = self._crit
        y = np.asarray(y, dtype=float)
        if y.shape != (crit.n,):
            raise CrossedFitError(f"y has shape {y.shape}, the design {crit.n} rows")
        crit.set_response(y)
        k = len(crit.names)
        x0 = np.broadcast_to(np.asarray(start, dtype=float), (k,)).copy()
        found = _quasi_newton(crit, x0, hessian) if hessian is not None else None
        if found is not None:
            escape = _escape_zero(crit, found)
            if escape is None:
                return self._result(found, converged=True, message="quasi-Newton (shared Hessian)")
            x0 = escape
        if not np.isfinite(crit.deviance(x0)):
            raise CrossedFitError("the REML criterion is not finite at the starting values")
        for _ in range(len(x0) + 1):
            res = self._lbfgsb(x0)
            # theta = 0 is a stationary point of every factor (the criterion is even in each
            # theta), where a gradient method may stop though moving off 0 lowers the
            # criterion: it restarts from the lower point until no such zero is left.
            escape = _escape_zero(crit, np.asarray(res.x, dtype=float))
            if escape is None:
                break
            x0 = escape
        return self._result(
            np.asarray(res.x, dtype=float), converged=bool(res.success), message=str(res.message)
        )

    def _lbfgsb(self, x0: np.ndarray) -> optimize.OptimizeResult:
        crit = self._crit
        k = len(x0)
        # Bounded at 0: a variance on the boundary is a legitimate REML answer, not a failure.
        res = optimize.minimize(
            crit.deviance_and_gradient,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * k,
            options={"maxiter": 500, "ftol": _FTOL, "gtol": _GTOL},
        )
        if not res.success:
            # L-BFGS-B can stop on a flat stretch of the criterion; Nelder-Mead from where it
            # stopped (on |theta|, which has the same criterion) settles whether it is an
            # optimum.
            retry = optimize.minimize(
                lambda t: crit.deviance(np.abs(t)),
                res.x,
                method="Nelder-Mead",
                options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 2000},
            )
            if retry.success and retry.fun <= res.fun + 1e-8:
                res = retry
                res.x = np.abs(res.x)
        return res

    def hessian_at(self, theta: np.ndarray) -> np.ndarray:
        """The criterion's Hessian at ``theta`` for the last y: differences of the exact
        gradient (k + 1 evaluations)."""
        crit = self._crit
        theta = np.asarray(theta, dtype=float)
        _, g = crit.deviance_and_gradient(theta)
        H = np.empty((len(theta), len(theta)))
        for i in range(len(theta)):
            step = 1e-6 * max(1.0, abs(theta[i]))
            moved = theta.copy()
            moved[i] += step
            H[:, i] = (crit.deviance_and_gradient(moved)[1] - g) / step
        return (H + H.T) / 2

    def _result(self, theta: np.ndarray, *, converged: bool, message: str) -> CrossedFit:
        crit = self._crit
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
            converged=converged,
            message=message,
            reml_deviance=float(deviance),
            boundary=boundary,
            theta=theta,
        )


# L-BFGS-B's tolerance on the projected gradient; the quasi-Newton search stops at the same.
_GTOL = 1e-7
_FTOL = 1e-12


# Where a variance sits at 0, the criterion is probed this far off it (relative SDs).
_ESCAPE_PROBES = (1e-3, 1e-2, 0.1, 0.5)


def _escape_zero(crit: _Criterion, theta: np.ndarray) -> np.ndarray | None:
    """A point with a lower criterion next to a zero of ``theta`` that is not a minimum in
    that direction, or None when every zero is one (or there is none)."""
    zeros = np.flatnonzero(theta < 1e-6)
    if not len(zeros):
        return None
    f = crit.deviance(theta)
    for i in zeros:
        for delta in _ESCAPE_PROBES:
            trial = theta.copy()
            trial[i] = delta
            if crit.deviance(trial) < f - 1e-9 * max(1.0, abs(f)):
                return trial
    return None


def _quasi_newton(
    crit: _Criterion, x0: np.ndarray, hessian: np.ndarray, max_iter: int = 50
) -> np.ndarray | None:
    """Projected BFGS on theta >= 0 from ``x0``, its Hessian approximation starting at
    ``hessian``; the optimum, or None when it does not get there (the caller falls back)."""
    theta = np.maximum(x0, 0.0)
    f, g = crit.deviance_and_gradient(theta)
    if not np.isfinite(f):
        return None
    B = np.array(hessian, dtype=float)
    for _ in range(max_iter):
        # A variance at 0 whose gradient pushes it below 0 stays there (the bound is active).
        active = (theta <= 0.0) & (g > 0.0)
        if np.max(np.abs(np.where(active, 0.0, g))) <= _GTOL:
            return theta
        try:
            if active.any():
                free = ~active
                step = np.zeros_like(theta)
                step[free] = -np.linalg.solve(B[np.ix_(free, free)], g[free])
            else:
                step = -np.linalg.solve(B, g)
        except np.linalg.LinAlgError:
            return None
        if not g @ step < 0:
            return None  # not a descent direction: the approximation is off here
        t = 1.0
        while True:
            candidate = np.maximum(theta + t * step, 0.0)
            fc, gc = crit.deviance_and_gradient(candidate)
            if np.isfinite(fc) and fc <= f + 1e-4 * (g @ (candidate - theta)):
                break
            t *= 0.5
            if t < 1e-8:
                return None
        s, dg = candidate - theta, gc - g
        if s @ dg > 1e-12:
            Bs = B @ s
            B = B - Bs[:, None] * (Bs / (s @ Bs)) + dg[:, None] * (dg / (dg @ s))
        if f - fc <= _FTOL * max(abs(f), abs(fc), 1.0):
            return candidate  # L-BFGS-B's other stopping rule: no relative reduction left
        theta, f, g = candidate, fc, gc
    return None
