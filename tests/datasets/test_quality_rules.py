"""The quality-screening rules on hand-built participants: flag and no flag at each threshold."""

from __future__ import annotations

import pytest

from studies.datasets.quality import (
    ParticipantRecord,
    attention_flag,
    blank_flag,
    duplicate_flags,
    median_seconds,
    rule_counts,
    screen,
    speeder_flag,
    straight_lining_flag,
)
from studies.spec.model import (
    AttentionRuleSpec,
    BlankItemsRuleSpec,
    DuplicateRuleSpec,
    QualitySpec,
    SpeederRuleSpec,
    StraightLiningRuleSpec,
)


def person(key: int = 1, **fields) -> ParticipantRecord:
    return ParticipantRecord(key=key, label=f"p{key:07d}", order=key, **fields)


# --------------------------------------------------------------------------- attention checks


def test_attention_flags_at_the_threshold_and_not_below():
    rule = AttentionRuleSpec(enabled=True, min_failed=2)
    assert attention_flag(person(attention=(False, True)), rule) is None
    found = attention_flag(person(attention=(False, False)), rule)
    assert found == {"rule": "attention_checks", "reason": "failed 2 of 2 attention checks"}


def test_attention_without_checks_answered_is_never_flagged():
    assert attention_flag(person(attention=()), AttentionRuleSpec(True, 1)) is None


# --------------------------------------------------------------------------- speeders


def test_speeder_minimum_is_strict():
    rule = SpeederRuleSpec(enabled=True, min_seconds=60, min_fraction_of_median=0)
    assert speeder_flag(person(completed=True, total_seconds=60.0), rule, None) is None
    found = speeder_flag(person(completed=True, total_seconds=59.6), rule, None)
    assert found["reason"] == "finished in 59.6 s, under the minimum of 60 s"
    assert found["rule"] == "speeders"


def test_speeder_fraction_of_the_median_at_the_boundary():
    rule = SpeederRuleSpec(enabled=True, min_seconds=0, min_fraction_of_median=0.3)
    median = 212.0
    boundary = 0.3 * median  # 63.6 s: exactly the limit is not under it
    assert speeder_flag(person(completed=True, total_seconds=boundary), rule, median) is None
    found = speeder_flag(person(completed=True, total_seconds=41.0), rule, median)
    assert found["reason"] == "finished in 41 s, under 0.3 × the median 212 s"


def test_speeder_rule_reads_only_completed_participants():
    rule = SpeederRuleSpec(enabled=True, min_seconds=600, min_fraction_of_median=0)
    assert speeder_flag(person(completed=False, total_seconds=5.0), rule, None) is None


def test_median_of_completed_participants_only():
    records = [
        person(1, completed=True, total_seconds=100.0),
        person(2, completed=True, total_seconds=300.0),
        person(3, completed=False, total_seconds=1.0),
    ]
    assert median_seconds(records) == 200.0
    assert median_seconds([person(4)]) is None


# --------------------------------------------------------------------------- straight-lining


def test_straight_lining_at_k_consecutive_items_and_not_at_k_minus_one():
    rule = StraightLiningRuleSpec(enabled=True, min_items=3)
    varied = (1, 5, 2)
    three = person(items=(varied, (4, 4, 4), (4, 4, 4), (4, 4, 4), varied))
    found = straight_lining_flag(three, rule)
    assert found == {
        "rule": "straight_lining",
        "reason": "answered 4 to every question of 3 consecutive items (items 2–4)",
    }
    two = person(items=((4, 4, 4), (4, 4, 4), varied, (4, 4, 4)))
    assert straight_lining_flag(two, rule) is None


def test_a_change_of_value_or_a_mixed_item_breaks_the_run():
    rule = StraightLiningRuleSpec(enabled=True, min_items=3)
    assert straight_lining_flag(person(items=((4, 4), (4, 4), (5, 5))), rule) is None
    assert straight_lining_flag(person(items=((4, 4), (4, 3), (4, 4))), rule) is None
    # Blank optional questions are ignored; an item with no answer at all breaks the run.
    assert straight_lining_flag(person(items=((4, None), (4, 4), (None, 4))), rule) is not None
    assert straight_lining_flag(person(items=((4,), (None,), (4,), (4,))), rule) is None


# --------------------------------------------------------------------------- blank items


def test_blank_items_more_than_the_maximum():
    rule = BlankItemsRuleSpec(enabled=True, max_blank=3)
    assert blank_flag(person(blank=3), rule) is None
    assert blank_flag(person(blank=4), rule) == {
        "rule": "blank_items",
        "reason": "left 4 questions blank (more than the 3 allowed)",
    }


# --------------------------------------------------------------------------- duplicates


def test_duplicates_flag_the_later_participant_only():
    rule = DuplicateRuleSpec(enabled=True)
    first = person(1, device_key="dev-a", session_id="s1")
    other = person(2, device_key="dev-b", session_id="s2")
    same_device = person(3, device_key="dev-a", session_id="s3")
    same_session = person(4, device_key="dev-c", session_id="s2")
    flags = duplicate_flags([same_session, same_device, other, first], rule)
    assert set(flags) == {3, 4}
    assert flags[3]["reason"] == "the same device as participant p0000001, who came earlier"
    assert "session id as participant p0000002" in flags[4]["reason"]


def test_no_duplicate_without_a_shared_key():
    rule = DuplicateRuleSpec(enabled=True)
    records = [person(1, device_key=""), person(2, device_key=""), person(3, device_key="x")]
    assert duplicate_flags(records, rule) == {}


# --------------------------------------------------------------------------- the whole screen


def test_screen_applies_only_enabled_rules():
    sloppy = person(
        1, completed=True, total_seconds=10.0, attention=(False,), items=((4,),) * 5, blank=9
    )
    nothing = screen([sloppy], QualitySpec())
    assert nothing == {1: []}
    rules = QualitySpec(
        attention_checks=AttentionRuleSpec(True, 1),
        speeders=SpeederRuleSpec(True, 60, 0),
        straight_lining=StraightLiningRuleSpec(True, 5),
        blank_items=BlankItemsRuleSpec(True, 3),
    )
    flags = screen([sloppy], rules)[1]
    assert [f["rule"] for f in flags] == [
        "attention_checks",
        "speeders",
        "straight_lining",
        "blank_items",
    ]
    assert rule_counts([flags, []]) == {
        "attention_checks": 1,
        "speeders": 1,
        "straight_lining": 1,
        "duplicates": 0,
        "blank_items": 1,
    }


@pytest.mark.parametrize("took, flagged", [(30.0, True), (31.0, False)])
def test_screen_takes_the_median_from_the_population(took, flagged):
    rules = QualitySpec(speeders=SpeederRuleSpec(True, 0, 0.1))
    others = [person(k, completed=True, total_seconds=310.0) for k in range(2, 5)]
    me = person(1, completed=True, total_seconds=took)
    # Median of 30/31, 310, 310, 310 is 310: the limit is 31 s.
    assert bool(screen([me], rules, population=[me, *others])[1]) is flagged
