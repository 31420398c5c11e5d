"""What a power simulation assumes: effects and variance components, typed in or from a pilot."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from studies.domain import RESPONSE_TYPES

# Limits that keep a typo (a variance of 1e9, 1000 points) from producing nonsense.
MAX_ABS_EFFECT = 100.0
MAX_SD = 100.0
_TERM = re.compile(r"^response_type\[(?P<type>[^\]]+)\](?::motivation\[(?P<mot>[^\]]+)\])?$")
_MOTIVATION_TERM = re.compile(r"^motivation\[(?P<mot>[^\]]+)\]$")


class PowerInputError(ValueError):
    """Bad input to a power analysis, in words a researcher can act on (field: message)."""

    def __init__(self, problems: Mapping[str, str] | str) -> None:
        self.problems = dict(problems) if isinstance(problems, Mapping) else {"": problems}
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in self.problems.items()))


@dataclass(frozen=True)
class Assumptions:
    """The data-generating model of one measure (see ``simulate``): every number it needs.

    Effects are on the rating scale, relative to ``reference_level`` at the first motivation
    level (benign), exactly as the analysis reports its coefficients. SDs, not variances.
    ``points``: round and clip simulated ratings to 1..points (None keeps them continuous).
    """

    measure: str
    reference_level: str
    intercept: float
    response_type: dict[str, float]
    motivation: dict[str, float] = field(default_factory=dict)
    interaction: dict[str, dict[str, float]] = field(default_factory=dict)
    sd_participant: float = 0.0
    sd_query: float = 0.0
    sd_residual: float = 1.0
    points: int | None = None
    source: str = "typed"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _number(value: Any, where: str, problems: dict[str, str], *, sd: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        problems[where] = f"must be a number, found {value!r}"
        return math.nan
    try:
        number = float(value)
    except ValueError:
        problems[where] = f"must be a number, found {value!r}"
        return math.nan
    if not math.isfinite(number):
        problems[where] = "must be a finite number"
    elif sd and not 0 <= number <= MAX_SD:
        problems[where] = f"must be an SD between 0 and {MAX_SD:g}, found {number:g}"
    elif not sd and abs(number) > MAX_ABS_EFFECT:
        problems[where] = f"must be between -{MAX_ABS_EFFECT:g} and {MAX_ABS_EFFECT:g}"
    return number


def _effects(value: Any, where: str, problems: dict[str, str], keys: tuple[str, ...] = ()):
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems[where] = "must be a mapping of level: effect"
        return {}
    out: dict[str, float] = {}
    for key, number in value.items():
        if keys and key not in keys:
            problems[f"{where}.{key}"] = f"unknown level (expected one of {', '.join(keys)})"
            continue
        out[str(key)] = _number(number, f"{where}.{key}", problems)
    return out


FIELDS = (
    "measure",
    "reference_level",
    "intercept",
    "response_type",
    "motivation",
    "interaction",
    "sd_participant",
    "sd_query",
    "sd_residual",
    "points",
    "source",
)


def assumptions_from_dict(data: Any, source: str = "typed") -> Assumptions:
    """Validate a plain dict (a YAML file, a form, an API payload); PowerInputError lists
    every problem by field."""
    if not isinstance(data, Mapping):
        raise PowerInputError("the assumptions must be a mapping of field: value")
    problems: dict[str, str] = {}
    for key in data:
        if key not in FIELDS:
            problems[str(key)] = f"unknown field (fields: {', '.join(FIELDS[:-1])})"
    measure = data.get("measure")
    if not isinstance(measure, str) or not measure.strip():
        problems["measure"] = "name the question (measure) to plan for"
        measure = ""
    reference = data.get("reference_level", "full_compliance")
    if reference not in RESPONSE_TYPES:
        problems["reference_level"] = f"must be a response type ({', '.join(RESPONSE_TYPES)})"
    if "intercept" not in data:
        problems["intercept"] = "required: the mean rating of the reference type (benign)"
    intercept = _number(data.get("intercept", 0.0), "intercept", problems)
    types = _effects(data.get("response_type"), "response_type", problems, RESPONSE_TYPES)
    if reference in types:
        problems[f"response_type.{reference}"] = (
            "the reference level has no effect of its own (it is the 0 others compare with)"
        )
    motivation = _effects(data.get("motivation"), "motivation", problems)
    interaction: dict[str, dict[str, float]] = {}
    raw = data.get("interaction") or {}
    if not isinstance(raw, Mapping):
        problems["interaction"] = "must be a mapping of response type: {motivation: effect}"
    else:
        for t, levels in raw.items():
            if t not in RESPONSE_TYPES or t == reference:
                problems[f"interaction.{t}"] = "must be a response type other than the reference"
                continue
            interaction[str(t)] = _effects(levels, f"interaction.{t}", problems)
    sds = {
        name: _number(
            data.get(name, 0.0 if name != "sd_residual" else None), name, problems, sd=True
        )
        for name in ("sd_participant", "sd_query", "sd_residual")
    }
    if "sd_residual" in data and sds["sd_residual"] == 0:
        problems["sd_residual"] = "must be above 0 (ratings without noise cannot be modelled)"
    points = data.get("points")
    if points is not None and (isinstance(points, bool) or not isinstance(points, int)):
        problems["points"] = f"must be a whole number of scale points or null, found {points!r}"
    elif points is not None and not 2 <= points <= 11:
        problems["points"] = "must be between 2 and 11 (or null for continuous ratings)"
    if problems:
        raise PowerInputError(problems)
    return Assumptions(
        measure=measure.strip(),
        reference_level=reference,
        intercept=intercept,
        response_type=types,
        motivation=motivation,
        interaction=interaction,
        sd_participant=sds["sd_participant"],
        sd_query=sds["sd_query"],
        sd_residual=sds["sd_residual"],
        points=points,
        source=str(data.get("source") or source),
    )


def assumptions_from_report(
    report: Mapping[str, Any], measure: str, *, points: int | None, source: str
) -> Assumptions:
    """Effects and variance components of ``measure`` as a pilot's analysis estimated them.

    Uses the stored report's crossed mixed model (REPORT_FORMAT.md): its coefficients are the
    effects, its variance components (participant, query, residual) the SDs squared. A model
    fitted by a fallback has no query variance and is refused rather than guessed at.
    """
    models = {m.get("measure"): m for m in report.get("mixed_models") or []}
    if measure not in models:
        have = ", ".join(str(m) for m in models) or "none"
        raise PowerInputError(
            {"measure": f"the pilot's analysis has no model of {measure!r} (models: {have})"}
        )
    model = models[measure]
    vc = model.get("variance_components") or {}
    missing = [k for k in ("participant", "query", "residual") if vc.get(k) is None]
    if missing or not model.get("coefficients"):
        why = model.get("warning") or model.get("method") or "no model"
        raise PowerInputError(
            {
                "pilot": f"the pilot's model of {measure} has no estimate of the "
                f"{', '.join(missing) or 'effects'} (it was fitted as: {why}); "
                "type the values in instead"
            }
        )
    reference = (report.get("meta") or {}).get("reference_level") or "full_compliance"
    data: dict[str, Any] = {
        "measure": measure,
        "reference_level": reference,
        "response_type": {},
        "motivation": {},
        "interaction": {},
        "points": points,
        "sd_participant": math.sqrt(max(vc["participant"], 0.0)),
        "sd_query": math.sqrt(max(vc["query"], 0.0)),
        "sd_residual": math.sqrt(max(vc["residual"], 0.0)),
    }
    for row in model["coefficients"]:
        term, estimate = row.get("term"), row.get("estimate")
        if estimate is None:
            continue
        if term == "Intercept":
            data["intercept"] = estimate
        elif (match := _TERM.match(term or "")) and match["mot"]:
            data["interaction"].setdefault(match["type"], {})[match["mot"]] = estimate
        elif match:
            data["response_type"][match["type"]] = estimate
        elif match := _MOTIVATION_TERM.match(term or ""):
            data["motivation"][match["mot"]] = estimate
    return assumptions_from_dict(data, source=source)
