"""The builder's quality-screening section: rules on and off round-trip, problems at their field."""

from __future__ import annotations

import pytest

from tests.builder.conftest import errors_of
from tests.builder.test_sections import exported, section_url, submit

pytestmark = pytest.mark.django_db


def test_quality_rules_round_trip_through_the_builder(clients, new_study):
    study = new_study(design="seed")  # the seed design has two attention checks
    url = section_url(study, "quality")
    response = submit(
        clients["editor"],
        url,
        {
            "attention_checks_enabled": "on",
            "attention_checks_min_failed": "2",
            "speeders_enabled": "on",
            "speeders_min_seconds": "90",
            "speeders_min_fraction_of_median": "0.25",
            "straight_lining_enabled": "on",
            "straight_lining_min_items": "5",
            "duplicates_enabled": "on",
            "screen_out_enabled": "on",
            "screen_out_code": "OUT-77",
            "screen_out_url": "https://example.org/screened",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    quality = exported(clients["owner"], study)["quality"]
    assert quality == {
        "attention_checks": {"enabled": True, "min_failed": 2},
        "speeders": {"enabled": True, "min_seconds": 90, "min_fraction_of_median": 0.25},
        "straight_lining": {"enabled": True, "min_items": 5},
        "duplicates": {"enabled": True},
        "blank_items": {"enabled": False, "max_blank": 3},
        "screen_out": {"enabled": True, "code": "OUT-77", "url": "https://example.org/screened"},
    }
    # The page shows what was saved, and switching a rule off keeps its threshold.
    page = clients["viewer"].get(url).content.decode()
    assert 'value="OUT-77"' in page
    response = submit(clients["editor"], url, {"speeders_enabled": None})
    assert response.status_code == 302
    speeders = exported(clients["owner"], study)["quality"]["speeders"]
    assert speeders == {"enabled": False, "min_seconds": 90, "min_fraction_of_median": 0.25}
    overview = clients["viewer"].get(f"/studies/{study.slug}/design/").content.decode()
    assert f'href="{url}"' in overview and "OUT-77" in overview


def test_a_bad_threshold_is_shown_at_its_field_and_nothing_is_saved(clients, new_study):
    study = new_study(design="seed")
    url = section_url(study, "quality")
    before = exported(clients["owner"], study)["quality"]
    response = submit(
        clients["editor"],
        url,
        {"attention_checks_enabled": "on", "attention_checks_min_failed": "3"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "at most the number of attention checks (2)" in errors_of(
        html, "attention_checks_min_failed"
    )
    response = submit(clients["editor"], url, {"screen_out_enabled": "on"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "required field 'code' is missing" in errors_of(html, "screen_out_code")
    assert "enable quality.attention_checks too" in errors_of(html, "screen_out_enabled")
    assert exported(clients["owner"], study)["quality"] == before


def test_viewers_cannot_change_the_rules(clients, new_study):
    study = new_study(design="seed")
    response = submit(
        clients["viewer"], section_url(study, "quality"), {"duplicates_enabled": "on"}
    )
    assert response.status_code == 403
    assert exported(clients["owner"], study)["quality"]["duplicates"] == {"enabled": False}
