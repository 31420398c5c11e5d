"""The analysis settings a study spec implies (no Django): the platform and the CLI share them.

The platform's stored analysis and ``python -m studies.analysis ratings.csv --spec spec.yaml``
use this one function, so a replication package's analysis is reproduced number for number.
"""

from __future__ import annotations

from studies.analysis.report import ReportOptions
from studies.spec.model import StudySpec


def options_from_spec(spec: StudySpec, *, inclusion: str | tuple[str, ...] | None) -> ReportOptions:
    """Reference and baseline levels, measures, composites, constructs, reverse coding, scale
    points and seed, as the spec's questions and ``analysis`` section define them."""
    questions = spec.questions
    constructs: dict[str, list[str]] = {}
    for question in questions:
        if question.construct:
            constructs.setdefault(question.construct, []).append(question.key)
    analysis = spec.analysis
    return ReportOptions(
        reference_level=analysis.reference_level,
        baseline_level=analysis.baseline_level,
        measures=[q.key for q in questions],
        composites={
            c.name: {
                "items": list(c.items),
                "reverse_coded": [q.key for q in questions if q.reverse_coded and q.key in c.items],
                "points": max(q.scale.points for q in questions if q.key in c.items),
            }
            for c in analysis.composites
        },
        constructs={k: v for k, v in constructs.items() if len(v) > 1},
        reverse_coded=[q.key for q in questions if q.reverse_coded],
        points=max(q.scale.points for q in questions),
        inclusion=inclusion,
        seed=spec.seed,
    )
