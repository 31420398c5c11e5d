"""The typed, immutable study spec: what a validated spec file means, field by field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from studies.design import AttentionSlot, Design, Factor, RuleRow

# Question types of questionnaire blocks; item questions and attention checks are Likert.
LIKERT = "likert"
SINGLE_CHOICE = "single_choice"
MULTIPLE_CHOICE = "multiple_choice"
FREE_TEXT = "free_text"
NUMBER = "number"
QUESTION_TYPES: tuple[str, ...] = (LIKERT, SINGLE_CHOICE, MULTIPLE_CHOICE, FREE_TEXT, NUMBER)
CHOICE_TYPES: tuple[str, ...] = (SINGLE_CHOICE, MULTIPLE_CHOICE)
PLACEMENTS: tuple[str, ...] = ("before", "after")

DEFAULT_REFERENCE_LEVEL = "full_compliance"
DEFAULT_BASELINE_LEVEL = "direct_refusal"
DEFAULT_TIME_LIMIT_MINUTES = 60
# Raw recruitment ids are erased this many days after the study closes (at most ten years).
DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 3650
DEFAULT_MAX_LENGTH = 1000
DEFAULT_RECRUITMENT_PARAMS: dict[str, str] = {
    "participant": "PROLIFIC_PID",
    "study": "STUDY_ID",
    "session": "SESSION_ID",
}

Number = int | float


@dataclass(frozen=True)
class ScaleSpec:
    """A Likert scale: points numbered from 1, labels (anchors) for some or all of them."""

    points: int
    anchors: tuple[tuple[int, str], ...] = ()  # (point, label), by point

    def labels(self) -> dict[int, str]:
        return dict(self.anchors)

    def to_dict(self) -> dict:
        return {"points": self.points, "anchors": dict(self.anchors)}

    @classmethod
    def from_dict(cls, d: Mapping) -> ScaleSpec:
        anchors = sorted((int(k), v) for k, v in (d.get("anchors") or {}).items())
        return cls(points=d["points"], anchors=tuple(anchors))


@dataclass(frozen=True)
class FactorSpec:
    name: str
    levels: tuple[str, ...]
    assignment: str  # "between" | "within"

    def to_dict(self) -> dict:
        return {"name": self.name, "levels": list(self.levels), "assignment": self.assignment}

    @classmethod
    def from_dict(cls, d: Mapping) -> FactorSpec:
        return cls(name=d["name"], levels=tuple(d["levels"]), assignment=d["assignment"])


@dataclass(frozen=True)
class RuleRowSpec:
    """When every (factor, level) pair of ``when`` matches an item, show ``show``."""

    when: tuple[tuple[str, str], ...]
    show: str  # a response type, or "$factor"

    def to_dict(self) -> dict:
        return {"when": dict(self.when), "show": self.show}

    @classmethod
    def from_dict(cls, d: Mapping) -> RuleRowSpec:
        return cls(when=tuple((d.get("when") or {}).items()), show=d["show"])


@dataclass(frozen=True)
class QuestionSpec:
    """A Likert question asked under every rated item."""

    key: str
    text: str
    scale: ScaleSpec
    construct: str = ""
    reverse_coded: bool = False
    required: bool = True

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "construct": self.construct,
            "text": self.text,
            "scale": self.scale.to_dict(),
            "reverse_coded": self.reverse_coded,
            "required": self.required,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> QuestionSpec:
        return cls(
            key=d["key"],
            text=d["text"],
            scale=ScaleSpec.from_dict(d["scale"]),
            construct=d.get("construct", ""),
            reverse_coded=d.get("reverse_coded", False),
            required=d.get("required", True),
        )


@dataclass(frozen=True)
class AttentionCheckSpec:
    """An item with a known correct answer, shown after ``after_item`` stimuli."""

    key: str
    text: str
    scale: ScaleSpec
    correct: int
    after_item: int

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "text": self.text,
            "scale": self.scale.to_dict(),
            "correct": self.correct,
            "after_item": self.after_item,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> AttentionCheckSpec:
        return cls(
            key=d["key"],
            text=d["text"],
            scale=ScaleSpec.from_dict(d["scale"]),
            correct=d["correct"],
            after_item=d["after_item"],
        )


@dataclass(frozen=True)
class BlockQuestionSpec:
    """A question of a questionnaire block; which fields apply depends on ``type``."""

    key: str
    text: str
    type: str = LIKERT
    required: bool = True
    scale: ScaleSpec | None = None  # likert
    options: tuple[str, ...] = ()  # single_choice, multiple_choice
    max_length: int | None = None  # free_text
    min: Number | None = None  # number (either bound may be open)
    max: Number | None = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {
            "key": self.key,
            "type": self.type,
            "text": self.text,
            "required": self.required,
        }
        if self.type == LIKERT:
            out["scale"] = self.scale.to_dict() if self.scale else None
        elif self.type in CHOICE_TYPES:
            out["options"] = list(self.options)
        elif self.type == FREE_TEXT:
            out["max_length"] = self.max_length
        elif self.type == NUMBER:
            out["min"] = self.min
            out["max"] = self.max
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> BlockQuestionSpec:
        scale = d.get("scale")
        return cls(
            key=d["key"],
            text=d["text"],
            type=d.get("type", LIKERT),
            required=d.get("required", True),
            scale=ScaleSpec.from_dict(scale) if scale else None,
            options=tuple(d.get("options") or ()),
            max_length=d.get("max_length"),
            min=d.get("min"),
            max=d.get("max"),
        )


@dataclass(frozen=True)
class BlockSpec:
    """A questionnaire block, shown once per participant before or after the rated items."""

    key: str
    title: str
    placement: str  # "before" | "after"
    questions: tuple[BlockQuestionSpec, ...]
    intro: str = ""

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "title": self.title,
            "intro": self.intro,
            "placement": self.placement,
            "questions": [q.to_dict() for q in self.questions],
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> BlockSpec:
        return cls(
            key=d["key"],
            title=d["title"],
            intro=d.get("intro", ""),
            placement=d["placement"],
            questions=tuple(BlockQuestionSpec.from_dict(q) for q in d["questions"]),
        )


@dataclass(frozen=True)
class CompletionSpec:
    code: str
    url: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "url": self.url}


@dataclass(frozen=True)
class RecruitmentParams:
    """Names of the recruitment link's query parameters."""

    participant: str = DEFAULT_RECRUITMENT_PARAMS["participant"]
    study: str = DEFAULT_RECRUITMENT_PARAMS["study"]
    session: str = DEFAULT_RECRUITMENT_PARAMS["session"]

    def to_dict(self) -> dict:
        return {"participant": self.participant, "study": self.study, "session": self.session}


@dataclass(frozen=True)
class CompositeSpec:
    """A composite score: the mean of ``items`` (question keys) after reverse coding."""

    name: str
    items: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"name": self.name, "items": list(self.items)}


@dataclass(frozen=True)
class AnalysisSpec:
    reference_level: str = DEFAULT_REFERENCE_LEVEL
    baseline_level: str = DEFAULT_BASELINE_LEVEL
    composites: tuple[CompositeSpec, ...] = ()

    def to_dict(self) -> dict:
        return {
            "reference_level": self.reference_level,
            "baseline_level": self.baseline_level,
            "composites": [c.to_dict() for c in self.composites],
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> AnalysisSpec:
        return cls(
            reference_level=d.get("reference_level", DEFAULT_REFERENCE_LEVEL),
            baseline_level=d.get("baseline_level", DEFAULT_BASELINE_LEVEL),
            composites=tuple(
                CompositeSpec(name=c["name"], items=tuple(c["items"]))
                for c in d.get("composites") or ()
            ),
        )


# Quality screening (the spec's ``quality:`` section): every rule is off unless enabled.
DEFAULT_MIN_FAILED = 1
DEFAULT_MIN_FRACTION_OF_MEDIAN = 0.3
DEFAULT_STRAIGHT_LINING_ITEMS = 4
DEFAULT_MAX_BLANK = 3


@dataclass(frozen=True)
class AttentionRuleSpec:
    """Flag a participant who failed at least ``min_failed`` attention checks."""

    enabled: bool = False
    min_failed: int = DEFAULT_MIN_FAILED

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "min_failed": self.min_failed}


@dataclass(frozen=True)
class SpeederRuleSpec:
    """Flag a total time (consent to completion) under ``min_seconds``, or under
    ``min_fraction_of_median`` × the median of the study's completed participants; 0 turns
    either part off."""

    enabled: bool = False
    min_seconds: int = 0
    min_fraction_of_median: Number = DEFAULT_MIN_FRACTION_OF_MEDIAN

    def to_dict(self) -> dict:
        return {
            "enabled": self.enabled,
            "min_seconds": self.min_seconds,
            "min_fraction_of_median": self.min_fraction_of_median,
        }


@dataclass(frozen=True)
class StraightLiningRuleSpec:
    """Flag the same answer to every question of ``min_items`` consecutive rated items."""

    enabled: bool = False
    min_items: int = DEFAULT_STRAIGHT_LINING_ITEMS

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "min_items": self.min_items}


@dataclass(frozen=True)
class DuplicateRuleSpec:
    """Flag a participant whose device key or recruitment session id an earlier one had."""

    enabled: bool = False

    def to_dict(self) -> dict:
        return {"enabled": self.enabled}


@dataclass(frozen=True)
class BlankItemsRuleSpec:
    """Flag a participant who left more than ``max_blank`` questions unanswered."""

    enabled: bool = False
    max_blank: int = DEFAULT_MAX_BLANK

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "max_blank": self.max_blank}


@dataclass(frozen=True)
class ScreenOutSpec:
    """End a participant at once when they reach the attention-check threshold, showing
    ``code`` (and a link to ``url``) instead of the completion code."""

    enabled: bool = False
    code: str = ""
    url: str = ""

    def to_dict(self) -> dict:
        return {"enabled": self.enabled, "code": self.code, "url": self.url}


@dataclass(frozen=True)
class QualitySpec:
    """The quality-screening rules (studies.datasets.quality applies them)."""

    attention_checks: AttentionRuleSpec = field(default_factory=AttentionRuleSpec)
    speeders: SpeederRuleSpec = field(default_factory=SpeederRuleSpec)
    straight_lining: StraightLiningRuleSpec = field(default_factory=StraightLiningRuleSpec)
    duplicates: DuplicateRuleSpec = field(default_factory=DuplicateRuleSpec)
    blank_items: BlankItemsRuleSpec = field(default_factory=BlankItemsRuleSpec)
    screen_out: ScreenOutSpec = field(default_factory=ScreenOutSpec)

    def to_dict(self) -> dict:
        return {
            "attention_checks": self.attention_checks.to_dict(),
            "speeders": self.speeders.to_dict(),
            "straight_lining": self.straight_lining.to_dict(),
            "duplicates": self.duplicates.to_dict(),
            "blank_items": self.blank_items.to_dict(),
            "screen_out": self.screen_out.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: Mapping | None) -> QualitySpec:
        d = d or {}
        return cls(
            attention_checks=AttentionRuleSpec(**(d.get("attention_checks") or {})),
            speeders=SpeederRuleSpec(**(d.get("speeders") or {})),
            straight_lining=StraightLiningRuleSpec(**(d.get("straight_lining") or {})),
            duplicates=DuplicateRuleSpec(**(d.get("duplicates") or {})),
            blank_items=BlankItemsRuleSpec(**(d.get("blank_items") or {})),
            screen_out=ScreenOutSpec(**(d.get("screen_out") or {})),
        )

    @property
    def any_enabled(self) -> bool:
        return any(rule["enabled"] for rule in self.to_dict().values())


@dataclass(frozen=True)
class StudySpec:
    """A whole, validated study design. Build one with load_spec / load_spec_data."""

    slug: str
    title: str
    consent: str
    instructions: str
    target_participants: int
    items_per_participant: int
    completion: CompletionSpec
    factors: tuple[FactorSpec, ...]
    questions: tuple[QuestionSpec, ...]
    description: str = ""
    time_limit_minutes: int = DEFAULT_TIME_LIMIT_MINUTES
    recruitment_params: RecruitmentParams = field(default_factory=RecruitmentParams)
    # True: the study's link may be opened without a participant id, on purpose (a classroom).
    anonymous_links: bool = False
    retention_days: int = DEFAULT_RETENTION_DAYS
    topic_choice: bool = False
    seed: int = 0
    response_rule: tuple[RuleRowSpec, ...] = ()
    attention_checks: tuple[AttentionCheckSpec, ...] = ()
    blocks: tuple[BlockSpec, ...] = ()
    analysis: AnalysisSpec = field(default_factory=AnalysisSpec)
    quality: QualitySpec = field(default_factory=QualitySpec)
    stimuli: str | None = None  # path of the stimuli file, relative to the spec file

    def to_dict(self) -> dict:
        """The normalised plain dict (what dump_spec writes and load_spec_data reads)."""
        out = {
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "consent": self.consent,
            "instructions": self.instructions,
            "target_participants": self.target_participants,
            "items_per_participant": self.items_per_participant,
            "time_limit_minutes": self.time_limit_minutes,
            "completion": self.completion.to_dict(),
            "recruitment_params": self.recruitment_params.to_dict(),
            "anonymous_links": self.anonymous_links,
            "retention_days": self.retention_days,
            "topic_choice": self.topic_choice,
            "seed": self.seed,
            "factors": [f.to_dict() for f in self.factors],
            "response_rule": [r.to_dict() for r in self.response_rule],
            "questions": [q.to_dict() for q in self.questions],
            "attention_checks": [a.to_dict() for a in self.attention_checks],
            "blocks": [b.to_dict() for b in self.blocks],
            "analysis": self.analysis.to_dict(),
            "quality": self.quality.to_dict(),
        }
        if self.stimuli is not None:  # kept only when given, so a round trip adds nothing
            out["stimuli"] = self.stimuli
        return out

    @classmethod
    def from_dict(cls, d: Mapping) -> StudySpec:
        """Build from an already-validated, normalised dict (use load_spec_data otherwise)."""
        completion = d["completion"]
        return cls(
            slug=d["slug"],
            title=d["title"],
            description=d.get("description", ""),
            consent=d["consent"],
            instructions=d["instructions"],
            target_participants=d["target_participants"],
            items_per_participant=d["items_per_participant"],
            time_limit_minutes=d.get("time_limit_minutes", DEFAULT_TIME_LIMIT_MINUTES),
            completion=CompletionSpec(code=completion["code"], url=completion.get("url", "")),
            recruitment_params=RecruitmentParams(
                **{**DEFAULT_RECRUITMENT_PARAMS, **(d.get("recruitment_params") or {})}
            ),
            anonymous_links=d.get("anonymous_links", False),
            retention_days=d.get("retention_days", DEFAULT_RETENTION_DAYS),
            topic_choice=d.get("topic_choice", False),
            seed=d.get("seed", 0),
            factors=tuple(FactorSpec.from_dict(f) for f in d["factors"]),
            response_rule=tuple(RuleRowSpec.from_dict(r) for r in d.get("response_rule") or ()),
            questions=tuple(QuestionSpec.from_dict(q) for q in d["questions"]),
            attention_checks=tuple(
                AttentionCheckSpec.from_dict(a) for a in d.get("attention_checks") or ()
            ),
            blocks=tuple(BlockSpec.from_dict(b) for b in d.get("blocks") or ()),
            analysis=AnalysisSpec.from_dict(d.get("analysis") or {}),
            quality=QualitySpec.from_dict(d.get("quality")),
            stimuli=d.get("stimuli"),
        )

    # -- conveniences

    def factor(self, name: str) -> FactorSpec | None:
        return next((f for f in self.factors if f.name == name), None)

    def block_questions(self) -> tuple[BlockQuestionSpec, ...]:
        return tuple(q for b in self.blocks for q in b.questions)

    def question_keys(self) -> tuple[str, ...]:
        """Every question key of the study: item questions, attention checks, block questions."""
        return (
            tuple(q.key for q in self.questions)
            + tuple(a.key for a in self.attention_checks)
            + tuple(q.key for q in self.block_questions())
        )


def design_from_spec(spec: StudySpec) -> Design:
    """Build the pure Design (factors, rule, items, attention checks) of a spec."""
    # An empty rule stays empty: design.py reads it as "show: $response_type".
    return Design(
        factors=tuple(
            Factor(name=f.name, levels=f.levels, assignment=f.assignment)  # type: ignore[arg-type]
            for f in spec.factors
        ),
        rule=tuple(RuleRow(when=dict(r.when), show=r.show) for r in spec.response_rule),
        items_per_participant=spec.items_per_participant,
        attention_checks=tuple(
            AttentionSlot(key=a.key, after_item=a.after_item) for a in spec.attention_checks
        ),
    )
