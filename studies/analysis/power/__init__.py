"""Power planning: simulate a planned design, refit the analysis's model, count detections."""

from studies.analysis.power.assumptions import (
    Assumptions,
    PowerInputError,
    assumptions_from_dict,
    assumptions_from_report,
)
from studies.analysis.power.simulation import (
    PlannedDesign,
    PowerSettings,
    parse_participants,
    power_settings,
    run_power,
)

__all__ = [
    "Assumptions",
    "PlannedDesign",
    "PowerInputError",
    "PowerSettings",
    "assumptions_from_dict",
    "assumptions_from_report",
    "parse_participants",
    "power_settings",
    "run_power",
]
