"""Study specs: load and validate a spec (YAML/JSON) into a typed, immutable StudySpec; dump it.

``load_spec`` / ``load_spec_file`` / ``load_spec_data`` validate with line-referenced
messages (``SpecError.problems``) and return a ``StudySpec``; ``spec_dict`` and
``StudySpec.to_dict()`` give its normalised plain dict, ``dump_spec`` its YAML.
"""

from studies.spec.dump import dump_spec, spec_dict
from studies.spec.loader import (
    SpecError,
    SpecProblem,
    load_spec,
    load_spec_data,
    load_spec_file,
)
from studies.spec.model import (
    DEFAULT_BASELINE_LEVEL,
    DEFAULT_MAX_LENGTH,
    DEFAULT_RECRUITMENT_PARAMS,
    DEFAULT_REFERENCE_LEVEL,
    DEFAULT_TIME_LIMIT_MINUTES,
    QUESTION_TYPES,
    AnalysisSpec,
    AttentionCheckSpec,
    BlockQuestionSpec,
    BlockSpec,
    CompletionSpec,
    CompositeSpec,
    FactorSpec,
    QualitySpec,
    QuestionSpec,
    RecruitmentParams,
    RuleRowSpec,
    ScaleSpec,
    StudySpec,
    design_from_spec,
)

__all__ = [
    "DEFAULT_BASELINE_LEVEL",
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_RECRUITMENT_PARAMS",
    "DEFAULT_REFERENCE_LEVEL",
    "DEFAULT_TIME_LIMIT_MINUTES",
    "QUESTION_TYPES",
    "AnalysisSpec",
    "AttentionCheckSpec",
    "BlockQuestionSpec",
    "BlockSpec",
    "CompletionSpec",
    "CompositeSpec",
    "FactorSpec",
    "QualitySpec",
    "QuestionSpec",
    "RecruitmentParams",
    "RuleRowSpec",
    "ScaleSpec",
    "SpecError",
    "SpecProblem",
    "StudySpec",
    "design_from_spec",
    "dump_spec",
    "load_spec",
    "load_spec_data",
    "load_spec_file",
    "spec_dict",
]
