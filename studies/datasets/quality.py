"""Quality-screening rules as pure functions: plain participant records in, flags with reasons out.

No Django here: annotation.selectors.quality_records builds the records from the database and
annotation.services.screen_participants stores what ``screen`` returns. Each flag is a dict
``{"rule": <the spec's rule name>, "reason": <a sentence a researcher reads>}``.

The rules, precisely (examples/README.md documents them for spec authors):

- attention_checks: flagged when the participant failed at least ``min_failed`` of the
  attention checks they answered (an answer other than the check's correct value).
- speeders: only completed participants; flagged when the time from consent to completion
  is under ``min_seconds`` or under ``min_fraction_of_median`` × the median time of the
  study's completed participants at evaluation time ("under" is strict; 0 turns a part off).
- straight_lining: flagged when one answer value was given to every question of at least
  ``min_items`` consecutive rated items (in the order shown; attention checks are not rated
  items and neither break nor extend a run; an item with no answer breaks it).
- duplicates: flagged when an earlier participant of the study (by arrival) had the same
  device key or the same recruitment session id; the first of them is never flagged.
- blank_items: flagged when more than ``max_blank`` questions were left unanswered: optional
  questions under rated items the participant submitted, and questions of questionnaire
  blocks they submitted. Pages never reached do not count (that is what a status says).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from studies.spec.model import (
    AttentionRuleSpec,
    BlankItemsRuleSpec,
    DuplicateRuleSpec,
    QualitySpec,
    SpeederRuleSpec,
    StraightLiningRuleSpec,
)

Flag = dict[str, str]

# The rules in the order flags are listed (the spec's order).
RULES: tuple[str, ...] = (
    "attention_checks",
    "speeders",
    "straight_lining",
    "duplicates",
    "blank_items",
)
RULE_LABELS: dict[str, str] = {
    "attention_checks": "Failed attention checks",
    "speeders": "Speeder",
    "straight_lining": "Straight-lining",
    "duplicates": "Duplicate participant",
    "blank_items": "Questions left blank",
}


@dataclass(frozen=True)
class ParticipantRecord:
    """What the rules need to know about one participant."""

    key: int  # the participant's id
    label: str  # a short pseudonym, for reasons that name another participant
    order: int  # arrival order (earlier is smaller)
    completed: bool = False
    total_seconds: float | None = None  # consent to completion
    # One entry per attention check answered: True when the answer was the correct one.
    attention: tuple[bool, ...] = ()
    # The rated (stimulus) items in the order shown, each the answers to its questions
    # (None: left blank).
    items: tuple[tuple[int | None, ...], ...] = ()
    blank: int = 0  # questions left unanswered on pages the participant submitted
    device_key: str = ""
    session_id: str = ""
    extra: dict = field(default_factory=dict, compare=False)


def flag(rule: str, reason: str) -> Flag:
    return {"rule": rule, "reason": reason}


def _seconds(value: float) -> str:
    # Rounded down to a tenth: 59.96 s must never read "60 s, under the minimum of 60 s".
    return f"{math.floor(value * 10) / 10:g} s"


def _number(value: float) -> str:
    return f"{value:g}"


def attention_flag(record: ParticipantRecord, rule: AttentionRuleSpec) -> Flag | None:
    failed = sum(1 for passed in record.attention if not passed)
    if failed < rule.min_failed:
        return None
    answered = len(record.attention)
    return flag(
        "attention_checks",
        f"failed {failed} of {answered} attention check{'s' if answered != 1 else ''}",
    )


def median_seconds(records: Iterable[ParticipantRecord]) -> float | None:
    """The median time, consent to completion, of the completed participants among ``records``."""
    times = [r.total_seconds for r in records if r.completed and r.total_seconds is not None]
    return statistics.median(times) if times else None


def speeder_flag(
    record: ParticipantRecord, rule: SpeederRuleSpec, median: float | None
) -> Flag | None:
    if not record.completed or record.total_seconds is None:
        return None
    took = record.total_seconds
    if rule.min_seconds and took < rule.min_seconds:
        return flag(
            "speeders",
            f"finished in {_seconds(took)}, under the minimum of {_seconds(rule.min_seconds)}",
        )
    fraction = rule.min_fraction_of_median
    if fraction and median is not None and took < fraction * median:
        return flag(
            "speeders",
            f"finished in {_seconds(took)}, under {_number(fraction)} × the median "
            f"{_seconds(median)}",
        )
    return None


def _longest_run(items: Sequence[Sequence[int | None]]) -> tuple[int, int, int | None]:
    """The longest run of consecutive items answered with one value throughout:
    (length, 1-based first item, value)."""
    best = (0, 0, None)
    length, start, value = 0, 0, None
    for number, answers in enumerate(items, start=1):
        given = {a for a in answers if a is not None}
        if len(given) != 1:
            length, value = 0, None
            continue
        (only,) = given
        if length and only == value:
            length += 1
        else:
            length, start, value = 1, number, only
        if length > best[0]:
            best = (length, start, value)
    return best


def straight_lining_flag(record: ParticipantRecord, rule: StraightLiningRuleSpec) -> Flag | None:
    length, start, value = _longest_run(record.items)
    if length < rule.min_items:
        return None
    return flag(
        "straight_lining",
        f"answered {value} to every question of {length} consecutive items "
        f"(items {start}–{start + length - 1})",
    )


def blank_flag(record: ParticipantRecord, rule: BlankItemsRuleSpec) -> Flag | None:
    if record.blank <= rule.max_blank:
        return None
    return flag(
        "blank_items",
        f"left {record.blank} questions blank (more than the {rule.max_blank} allowed)",
    )


def duplicate_flags(
    population: Iterable[ParticipantRecord], rule: DuplicateRuleSpec
) -> dict[int, Flag]:
    """For every participant of ``population`` that an earlier one duplicates: its flag."""
    out: dict[int, Flag] = {}
    first_device: dict[str, ParticipantRecord] = {}
    first_session: dict[str, ParticipantRecord] = {}
    for record in sorted(population, key=lambda r: r.order):
        reasons = []
        if record.device_key:
            earlier = first_device.setdefault(record.device_key, record)
            if earlier is not record:
                reasons.append(f"the same device as participant {earlier.label}, who came earlier")
        if record.session_id:
            earlier = first_session.setdefault(record.session_id, record)
            if earlier is not record:
                reasons.append(
                    f"the same recruitment session id as participant {earlier.label}, "
                    "who came earlier"
                )
        if reasons:
            out[record.key] = flag("duplicates", "; ".join(reasons))
    return out


def screen(
    records: Iterable[ParticipantRecord],
    rules: QualitySpec,
    *,
    population: Iterable[ParticipantRecord] = (),
) -> dict[int, list[Flag]]:
    """The flags of each of ``records`` under the enabled rules.

    ``population`` is every participant of the study (``records`` included or not): the
    speeders' median and the duplicates' "earlier participant" come from it.
    """
    records = list(records)
    population = list(population) or records
    median = median_seconds(population) if rules.speeders.enabled else None
    duplicates = duplicate_flags(population, rules.duplicates) if rules.duplicates.enabled else {}
    out: dict[int, list[Flag]] = {}
    for record in records:
        found = [
            rules.attention_checks.enabled and attention_flag(record, rules.attention_checks),
            rules.speeders.enabled and speeder_flag(record, rules.speeders, median),
            rules.straight_lining.enabled and straight_lining_flag(record, rules.straight_lining),
            duplicates.get(record.key),
            rules.blank_items.enabled and blank_flag(record, rules.blank_items),
        ]
        out[record.key] = [f for f in found if f]
    return out


def rule_counts(flag_lists: Iterable[Sequence[Flag]]) -> dict[str, int]:
    """How many participants each rule flagged (a participant counts once per rule)."""
    counts = dict.fromkeys(RULES, 0)
    for flags in flag_lists:
        for name in {f.get("rule") for f in flags or ()}:
            if name in counts:
                counts[name] += 1
    return counts
