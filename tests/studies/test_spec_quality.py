"""The spec's quality section: defaults, round trip through file and database, clear errors."""

from __future__ import annotations

import pytest

from studies import selectors, services
from studies.spec import QualitySpec, SpecError, dump_spec, load_spec
from tests.studies.test_spec import BASE, error_of

QUALITY = """\
quality:
  attention_checks: {enabled: true, min_failed: 1}
  speeders: {enabled: true, min_seconds: 90, min_fraction_of_median: 0.25}
  straight_lining: {enabled: true, min_items: 3}
  duplicates: {enabled: true}
  blank_items: {enabled: false, max_blank: 2}
  screen_out: {enabled: true, code: OUT-1, url: "https://example.org/out"}
"""
# BASE has 34 lines: the quality section starts on line 35.
FIRST = 35


def test_without_a_quality_section_every_rule_is_off():
    spec = load_spec(BASE)
    assert spec.quality == QualitySpec()
    assert not spec.quality.any_enabled
    assert spec.to_dict()["quality"]["speeders"] == {
        "enabled": False,
        "min_seconds": 0,
        "min_fraction_of_median": 0.3,
    }
    assert load_spec(BASE + "quality: null\n") == spec
    assert load_spec(BASE + "quality:\n  speeders: null\n") == spec


def test_quality_rules_load_typed_and_round_trip():
    spec = load_spec(BASE + QUALITY)
    q = spec.quality
    assert q.attention_checks.enabled and q.attention_checks.min_failed == 1
    assert (q.speeders.min_seconds, q.speeders.min_fraction_of_median) == (90, 0.25)
    assert q.straight_lining.min_items == 3
    assert q.duplicates.enabled and not q.blank_items.enabled
    assert (q.screen_out.code, q.screen_out.url) == ("OUT-1", "https://example.org/out")
    text = dump_spec(spec)
    assert load_spec(text) == spec
    assert dump_spec(load_spec(text)) == text
    # Fields of each rule come out in the documented order.
    assert "  speeders:\n    enabled: true\n    min_seconds: 90\n" in text


@pytest.mark.django_db
def test_import_then_export_keeps_the_quality_rules():
    spec = load_spec(BASE + QUALITY)
    study = services.import_study(spec=spec)
    study.refresh_from_db()
    assert study.quality["screen_out"]["code"] == "OUT-1"
    assert selectors.study_spec(study).quality == spec.quality


def test_unknown_rule_gets_a_suggestion_and_its_line():
    message = error_of(BASE + "quality:\n  speeder: {enabled: true}\n")
    assert f"line {FIRST + 1}, quality.speeder: unknown field 'speeder'" in message
    assert "did you mean 'speeders'?" in message


def test_unknown_rule_field_gets_a_suggestion():
    message = error_of(BASE + "quality:\n  attention_checks: {enabled: true, min_fail: 1}\n")
    assert "quality.attention_checks.min_fail: unknown field" in message
    assert "'min_failed'" in message


@pytest.mark.parametrize(
    "section, path, words",
    [
        (
            "  speeders: {enabled: true, min_fraction_of_median: 1.5}\n",
            "quality.speeders.min_fraction_of_median",
            "from 0 to below 1",
        ),
        (
            "  speeders: {enabled: true, min_seconds: 0, min_fraction_of_median: 0}\n",
            "quality.speeders",
            "could never flag anyone",
        ),
        ("  straight_lining: {enabled: true, min_items: 1}\n", "quality.straight_lining", "2"),
        ("  blank_items: {enabled: yes, max_blank: -1}\n", "quality.blank_items", "at least 0"),
        (
            "  attention_checks: {enabled: true, min_failed: 2}\n",
            "quality.attention_checks.min_failed",
            "at most the number of attention checks (1)",
        ),
        (
            "  attention_checks: {enabled: true}\n  screen_out: {enabled: true}\n",
            "quality.screen_out.code",
            "required field 'code' is missing",
        ),
        (
            "  screen_out: {enabled: true, code: X}\n",
            "quality.screen_out",
            "enable quality.attention_checks too",
        ),
        (
            "  attention_checks: {enabled: true}\n  screen_out: {enabled: true, code: ABC}\n",
            "quality.screen_out.code",
            "must differ from the completion code",
        ),
        (
            "  attention_checks: {enabled: true}\n"
            "  screen_out: {enabled: true, code: X, url: 'javascript:alert(1)'}\n",
            "quality.screen_out.url",
            "http:// or https://",
        ),
    ],
)
def test_bad_rules_are_refused_with_path_and_reason(section, path, words):
    with pytest.raises(SpecError) as info:
        load_spec(BASE + "quality:\n" + section)
    problems = [p for p in info.value.problems if p.path.startswith(path)]
    assert problems, info.value.problems
    assert any(words in p.message for p in problems), problems
    assert all(p.line is not None and p.line >= FIRST for p in problems)


def test_attention_rule_without_attention_checks_is_refused():
    without = BASE[: BASE.index("attention_checks:")]
    message = error_of(without + "quality:\n  attention_checks: {enabled: true}\n")
    assert "quality.attention_checks: the attention-check rule is enabled" in message


def test_a_disabled_screen_out_needs_no_code():
    spec = load_spec(BASE + "quality:\n  screen_out: {enabled: false}\n")
    assert spec.quality.screen_out.code == ""
