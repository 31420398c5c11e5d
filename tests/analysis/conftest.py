"""Simulated studies shared by the analysis tests (built once per session: they are read-only)."""

from __future__ import annotations

import pandas as pd
import pytest

from studies.analysis import ReportOptions, build_report
from tests.analysis.simulate import simulate_long_format


@pytest.fixture(scope="session")
def likert_frame() -> pd.DataFrame:
    """480 participants of the seed design, four measures, rounded to the 1..7 scale."""
    return simulate_long_format(480, seed=11, rounded=True)


@pytest.fixture(scope="session")
def likert_report(likert_frame) -> dict:
    options = ReportOptions(
        composites={
            "negative": {
                "items": ["frustration", "satisfaction"],
                "reverse_coded": ["satisfaction"],
            }
        },
        constructs={"affect": ["helpfulness", "satisfaction", "frustration"]},
        reverse_coded=["frustration"],
        bootstrap_reps=300,
    )
    return build_report(likert_frame, options)
