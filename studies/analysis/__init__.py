"""Statistics of a study's ratings: pure functions from a long-format DataFrame to plain data."""

from studies.analysis.frame import AnalysisInputError, read_long_format
from studies.analysis.report import ReportOptions, build_report

__all__ = ["AnalysisInputError", "ReportOptions", "build_report", "read_long_format"]
