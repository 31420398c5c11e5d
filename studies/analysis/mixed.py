"""Linear mixed model per measure: response type x motivation, crossed random intercepts."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import OLS
from statsmodels.regression.mixed_linear_model import MixedLM

from studies.analysis.common import num, ordered_levels
from studies.analysis.crossed import fit_crossed_reml

logger = logging.getLogger(__name__)
METHOD_CROSSED = "crossed random intercepts (REML, sparse mixed-model equations)"
METHOD_PARTICIPANT = "fallback: random intercept for participant only (statsmodels MixedLM, REML)"
METHOD_OLS = "fallback: OLS with cluster-robust SEs by participant"
METHOD_NONE = "not fitted"
# In the seed design alignment follows from response type and motivation (aligned = full
# compliance for benign, refusal for malicious), so it cannot have its own coefficient.
ALIGNMENT_CONFOUNDED = (
    "alignment is fully determined by response type × motivation in this design, so it is "
    "not a separate model term (its effect is carried by the interaction terms)"
)
# Where the reference level of a factor is absent, these levels are preferred in turn.
_BASE_LEVELS = {"motivation": "benign", "alignment": "aligned"}
_Z = stats.norm.ppf(0.975)
# A column whose part unexplained by earlier columns is below this share is collinear.
_COLLINEAR_TOL = 1e-9


@dataclass
class _Term:
    """One fixed-effect column: its readable name and the response type it concerns."""

    name: str
    response_type: str | None
    column: np.ndarray


@dataclass
class _Estimates:
    """What any of the fitting methods hands back, before formatting."""

    params: np.ndarray
    se: np.ndarray
    variance: dict[str, float | None]
    converged: bool
    notes: list[str]


def stars(p: float | None) -> str:
    """Significance stars on a (Holm-adjusted) p: * < .05, ** < .01, *** < .001."""
    if p is None:
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


def _indicator(values: pd.Series, level: str) -> np.ndarray:
    return (values == level).to_numpy(dtype=float)


def _build_terms(
    data: pd.DataFrame, reference: str, use_motivation: bool, use_alignment: bool
) -> tuple[list[_Term], str | None, str | None]:
    """Treatment-coded columns in display order, and the motivation and alignment references."""
    n = len(data)
    terms = [_Term("Intercept", None, np.ones(n))]
    types = [t for t in ordered_levels("response_type", data["response_type"]) if t != reference]
    for t in types:
        terms.append(_Term(f"response_type[{t}]", t, _indicator(data["response_type"], t)))
    mot_ref = align_ref = None
    if use_motivation:
        levels = ordered_levels("motivation", data["motivation"])
        mot_ref = _BASE_LEVELS["motivation"] if "benign" in levels else levels[0]
        others = [m for m in levels if m != mot_ref]
        for m in others:
            terms.append(_Term(f"motivation[{m}]", None, _indicator(data["motivation"], m)))
        for t in types:
            for m in others:
                col = _indicator(data["response_type"], t) * _indicator(data["motivation"], m)
                terms.append(_Term(f"response_type[{t}]:motivation[{m}]", t, col))
    if use_alignment:
        levels = ordered_levels("alignment", data["alignment"])
        align_ref = _BASE_LEVELS["alignment"] if "aligned" in levels else levels[0]
        for a in levels:
            if a != align_ref:
                terms.append(_Term(f"alignment[{a}]", None, _indicator(data["alignment"], a)))
    return terms, mot_ref, align_ref


def _independent(terms: list[_Term]) -> tuple[list[_Term], list[_Term]]:
    """(kept, dropped): later columns that earlier ones already determine are dropped.

    Works on the scaled Gram matrix, so it costs one pass over the data whatever its size.
    """
    X = np.column_stack([t.column for t in terms])
    gram = X.T @ X
    norms = np.sqrt(np.diag(gram))
    safe = np.where(norms > 0, norms, 1.0)
    scaled = gram / np.outer(safe, safe)
    kept: list[int] = []
    dropped: list[int] = []
    for j in range(len(terms)):
        residual = 0.0
        if norms[j] > 0:
            residual = 1.0
            if kept:
                cross = scaled[kept, j]
                residual -= cross @ np.linalg.solve(scaled[np.ix_(kept, kept)], cross)
        (kept if residual > _COLLINEAR_TOL else dropped).append(j)
    return [terms[j] for j in kept], [terms[j] for j in dropped]


def _fit_crossed(y: np.ndarray, X: np.ndarray, codes: dict[str, np.ndarray]) -> _Estimates:
    """The main model; raises when it cannot be fitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_crossed_reml(y, X, codes)
    notes = [str(w.message) for w in caught]
    if not fit.converged:
        notes.append(f"REML optimiser did not report convergence: {fit.message}")
    if fit.boundary:
        notes.append(
            "variance of " + ", ".join(fit.boundary) + " estimated at 0 (boundary of the space)"
        )
    se = np.sqrt(np.diag(fit.cov_fe))
    if not (np.all(np.isfinite(fit.fe_params)) and np.all(np.isfinite(se))):
        raise FloatingPointError("non-finite estimates or standard errors")
    return _Estimates(
        params=fit.fe_params,
        se=se,
        variance={
            "participant": fit.vcomp.get("participant"),
            "query": fit.vcomp.get("query"),
            "residual": fit.scale,
        },
        converged=fit.converged,
        notes=notes,
    )


def _fit_participant_only(y: np.ndarray, X: np.ndarray, participant: np.ndarray) -> _Estimates:
    """First fallback: statsmodels MixedLM with participants as the only grouping."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = MixedLM(y, X, groups=participant).fit(reml=True)
    notes = [f"{w.category.__name__}: {w.message}" for w in caught]
    params = np.asarray(result.fe_params, dtype=float)
    se = np.asarray(result.bse_fe, dtype=float)
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(se))):
        raise FloatingPointError("non-finite estimates or standard errors")
    cov_re = np.asarray(result.cov_re, dtype=float)
    return _Estimates(
        params=params,
        se=se,
        variance={
            "participant": float(cov_re.ravel()[0]) if cov_re.size else None,
            "query": None,
            "residual": float(result.scale),
        },
        converged=bool(result.converged),
        notes=notes,
    )


def _fit_ols(y: np.ndarray, X: np.ndarray, participant: np.ndarray) -> _Estimates:
    """Last fallback: OLS, SEs clustered by participant where there are clusters to use."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if len(np.unique(participant)) >= 2:
            result = OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": participant})
        else:
            result = OLS(y, X).fit()
    return _Estimates(
        params=np.asarray(result.params, dtype=float),
        se=np.asarray(result.bse, dtype=float),
        variance={"participant": None, "query": None, "residual": float(result.scale)},
        converged=True,
        notes=[f"{w.category.__name__}: {w.message}" for w in caught],
    )


def _formula(reference: str, motivation: bool, alignment: bool, random: Sequence[str]) -> str:
    """The model in R-style notation, as it was actually fitted."""
    fixed = f"value ~ C(response_type, Treatment('{reference}'))"
    if motivation:
        fixed += " * motivation"
    if alignment:
        fixed += " + alignment"
    return fixed + "".join(f" + (1|{r})" for r in random)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (as statsmodels' multipletests(method="holm"),
    which runs gc.collect() on every call: a quarter of a second each in a big process)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def model_not_fitted(measure: str | None, warning: str, data: pd.DataFrame) -> dict:
    """The record of a measure that has no model, with the reason in ``warning``."""
    return {
        "measure": measure,
        "formula": None,
        "method": METHOD_NONE,
        "converged": False,
        "warning": warning,
        "n_obs": int(len(data)),
        "n_participants": int(data["participant_id"].nunique()) if len(data) else 0,
        "n_queries": int(data["query_id"].nunique()) if len(data) else 0,
        "variance_components": {"participant": None, "query": None, "residual": None},
        "coefficients": [],
    }


def fit_mixed_model(
    df_measure: pd.DataFrame,
    reference_level: str = "full_compliance",
    factors: Sequence[str] = ("response_type", "motivation", "alignment"),
) -> dict:
    """Fit ``value ~ response_type * motivation (+ alignment)`` with crossed random intercepts.

    Random intercepts for participant and query (crossed, REML). On failure it falls back to
    a participant-only random intercept (statsmodels MixedLM), then to OLS with
    participant-clustered SEs; ``method`` names what was used and ``warning`` why. Holm's
    adjustment runs over the response-type terms (main effects and interactions); other
    terms are their own family of one, so their ``p_holm`` equals ``p``.
    """
    measure = (
        str(df_measure["question"].iloc[0])
        if "question" in df_measure.columns and len(df_measure)
        else None
    )
    notes: list[str] = []
    use_motivation = "motivation" in factors and "motivation" in df_measure.columns
    use_alignment = "alignment" in factors and "alignment" in df_measure.columns
    needed = ["value", "participant_id", "query_id", "response_type"]
    needed += ["motivation"] * use_motivation + ["alignment"] * use_alignment
    data = df_measure.dropna(subset=needed)
    if len(data) < len(df_measure):
        notes.append(f"{len(df_measure) - len(data)} ratings with a missing factor level left out")
    y = data["value"].to_numpy(dtype=float)
    if len(y) == 0:
        return model_not_fitted(measure, "no ratings to model", data)
    if np.ptp(y) == 0:
        return model_not_fitted(measure, f"every rating is {y[0]:g}: zero variance, no model", data)

    types = ordered_levels("response_type", data["response_type"])
    reference = reference_level
    if reference not in types:
        reference = types[0]
        notes.append(
            f"reference level {reference_level} has no ratings here; effects are relative "
            f"to {reference} instead"
        )
    for name, use in (("motivation", use_motivation), ("alignment", use_alignment)):
        if use and data[name].nunique() < 2:
            if name == "motivation":
                use_motivation = False
            else:
                use_alignment = False
            level = data[name].iloc[0]
            notes.append(f"{name} has one level ({level}) here, so it is not in the model")

    terms, _, _ = _build_terms(data, reference, use_motivation, use_alignment)
    kept, dropped = _independent(terms)
    for term in dropped:
        if term.name.startswith("alignment["):
            notes.append(ALIGNMENT_CONFOUNDED)
            use_alignment = False
        elif not term.column.any():
            notes.append(f"{term.name} has no ratings, so it is not estimated")
        else:
            notes.append(f"{term.name} is collinear with earlier terms, so it is not estimated")
    X = np.column_stack([t.column for t in kept])

    participant = pd.factorize(data["participant_id"])[0]
    query = pd.factorize(data["query_id"])[0]
    random = {"participant": participant, "query": query}
    for name, codes in list(random.items()):
        if codes.max() < 1:
            notes.append(f"only one {name}: its random intercept is left out")
            del random[name]

    method = METHOD_CROSSED
    estimates: _Estimates | None = None
    failures: list[str] = []
    attempts = [
        (METHOD_CROSSED, "crossed model", lambda: _fit_crossed(y, X, random)),
        (
            METHOD_PARTICIPANT,
            "participant-only model",
            lambda: _fit_participant_only(y, X, participant),
        ),
        (METHOD_OLS, "OLS", lambda: _fit_ols(y, X, participant)),
    ]
    if not random:
        attempts = attempts[2:]
    elif "participant" not in random:
        attempts = [attempts[0], attempts[2]]
    for candidate, label, attempt in attempts:
        try:
            estimates = attempt()
            method = candidate
            break
        except Exception:  # noqa: BLE001 - any failure moves on to the next method
            # The traceback is for the log; the reader learns which model could not be fitted.
            logger.warning("%s: %s could not be fitted", measure, label, exc_info=True)
            failures.append(f"{label} could not be fitted")
    if estimates is None:
        return model_not_fitted(measure, "; ".join(notes + failures), data)
    if method != METHOD_CROSSED and failures:
        notes += failures + [f"used {method}"]
    notes += estimates.notes

    rows = _coefficients(kept, estimates)
    random_names = ["participant_id"] * ("participant" in random and method != METHOD_OLS)
    random_names += ["query_id"] * ("query" in random and method == METHOD_CROSSED)
    variance = {k: num(v) for k, v in estimates.variance.items()}
    return {
        "measure": measure,
        "formula": _formula(reference, use_motivation, use_alignment, random_names),
        "method": method,
        "converged": bool(estimates.converged),
        "warning": "; ".join(dict.fromkeys(notes)) or None,
        "n_obs": int(len(y)),
        "n_participants": int(participant.max() + 1),
        "n_queries": int(query.max() + 1),
        "variance_components": variance,
        "coefficients": rows,
    }


def _coefficients(terms: list[_Term], est: _Estimates) -> list[dict]:
    """Coefficient rows with z-based CIs and p, Holm over the response-type family."""
    rows: list[dict] = []
    for term, b, se in zip(terms, est.params, est.se, strict=True):
        ok = np.isfinite(se) and se > 0
        p = float(2 * stats.norm.sf(abs(b / se))) if ok else None
        rows.append(
            {
                "term": term.name,
                "response_type": term.response_type,
                "estimate": num(b),
                "se": num(se),
                "ci_low": num(b - _Z * se) if ok else None,
                "ci_high": num(b + _Z * se) if ok else None,
                "p": num(p),
                "p_holm": None,
                "stars": "",
            }
        )
    family = [
        i for i, r in enumerate(rows) if r["response_type"] is not None and r["p"] is not None
    ]
    if family:
        adjusted = holm([rows[i]["p"] for i in family])
        for i, p_adj in zip(family, adjusted, strict=True):
            rows[i]["p_holm"] = num(p_adj)
    for r in rows:
        if r["term"] != "Intercept" and r["response_type"] is None:
            r["p_holm"] = r["p"]
        r["stars"] = stars(r["p_holm"])
    return rows
