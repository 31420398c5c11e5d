"""Editing each section of a study's design: values round-trip, problems appear at their field."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from studies import selectors
from studies.models import Study
from studies.spec import load_spec, spec_dict
from tests.builder.conftest import errors_of, field_block, form_data

pytestmark = pytest.mark.django_db


def section_url(study: Study, section: str) -> str:
    return f"/studies/{study.slug}/design/{section}/"


def submit(client: Client, url: str, changes: dict, button: str = "save"):
    """Load the page, change some fields as a user would, and press ``button``."""
    data = form_data(client.get(url).content.decode())
    data.update(changes)
    for name in [k for k, v in changes.items() if v is None]:
        data.pop(name)  # an unticked checkbox is not sent
    data[button] = ""
    return client.post(url, data)


def exported(client: Client, study: Study) -> dict:
    """The spec as the download gives it, loaded back by the spec loader."""
    response = client.get(f"/studies/{study.slug}/spec.yaml")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{study.slug}.yaml"'
    return spec_dict(load_spec(response.content.decode()))


def saved(study: Study) -> dict:
    """The spec as stored now (read afresh from the database)."""
    study.refresh_from_db()
    return spec_dict(selectors.study_spec(study))


def test_metadata_round_trips(clients, new_study):
    study = new_study()
    response = submit(
        clients["editor"],
        section_url(study, "metadata"),
        {
            "title": "Renamed study",
            "description": "Five types, rated once each.",
            "target_participants": "60",
            "items_per_participant": "10",
            "time_limit_minutes": "25",
            "topic_choice": None,
            "seed": "7",
        },
    )
    assert response.status_code == 302
    spec = exported(clients["owner"], study)
    assert {k: spec[k] for k in ("title", "description", "target_participants")} == {
        "title": "Renamed study",
        "description": "Five types, rated once each.",
        "target_participants": 60,
    }
    assert (spec["items_per_participant"], spec["time_limit_minutes"], spec["seed"]) == (
        10,
        25,
        7,
    )
    assert "saved" in clients["editor"].get(response["Location"]).content.decode()


def test_items_not_a_multiple_of_the_within_cells_is_shown_at_its_field(clients, new_study):
    study = new_study()
    before = saved(study)
    response = submit(
        clients["owner"], section_url(study, "metadata"), {"items_per_participant": "7"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "must be a multiple of the 5" in errors_of(page, "items_per_participant")
    assert "Nothing was saved" in page
    assert saved(study) == before


def test_markdown_preview_shows_sanitised_html_and_saves_nothing(clients, new_study):
    study = new_study()
    before = saved(study)
    text = "## Welcome\n\nPlease read **carefully**.<script>alert(1)</script>"
    response = submit(
        clients["owner"], section_url(study, "texts"), {"consent": text}, button="preview"
    )
    assert response.status_code == 200
    page = response.content.decode()
    preview = page.split('data-preview="consent">', 1)[1].split("</div>", 1)[0]
    assert "<h2>Welcome</h2>" in preview and "<strong>carefully</strong>" in preview
    assert "<script" not in preview
    assert saved(study) == before
    # The previewed page still holds what was typed: "Save" from there keeps it.
    data = form_data(page)
    assert data["consent"] == text
    data.update({"instructions": "Rate each response.", "save": ""})
    response = clients["owner"].post(section_url(study, "texts"), data)
    assert response.status_code == 302
    spec = exported(clients["owner"], study)
    assert (spec["consent"], spec["instructions"]) == (text, "Rate each response.")


def test_factors_and_rule_round_trip_with_a_refreshed_rule_table(clients, new_study):
    study = new_study()
    url = section_url(study, "design")
    client = clients["owner"]
    # A new between factor; "Update the rule table" adds its column and saves nothing.
    response = submit(
        client,
        url,
        {
            "factor-2-name": "framing",
            "factor-2-levels": "formal\ncasual",
            "factor-2-assignment": "between",
        },
        button="refresh",
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "formal" in field_block(page, "rule-1-when_2")
    assert [f["name"] for f in saved(study)["factors"]] == ["response_type", "motivation"]
    # From that page: a first row for malicious formal requests, then the default row.
    data = form_data(page)
    data.update(
        {"rule-1-when_1": "malicious", "rule-1-when_2": "formal", "rule-1-show": "direct_refusal"}
    )
    data.update({"rule-1-ORDER": "0", "save": ""})
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()
    spec = exported(client, study)
    assert spec["factors"][2] == {
        "name": "framing",
        "levels": ["formal", "casual"],
        "assignment": "between",
    }
    assert spec["response_rule"] == [
        {"when": {"motivation": "malicious", "framing": "formal"}, "show": "direct_refusal"},
        {"when": {}, "show": "$response_type"},
    ]


def test_a_rule_level_that_does_not_exist_is_shown_at_its_select(clients, new_study):
    study = new_study()
    before = saved(study)
    response = submit(
        clients["owner"],
        section_url(study, "design"),
        {"rule-0-when_1": "hostile"},
    )
    assert response.status_code == 400
    errors = errors_of(response.content.decode(), "rule-0-when_1")
    assert "'hostile' is not a level of factor 'motivation'" in errors
    assert saved(study) == before


def test_items_per_participant_sits_beside_the_factors_it_must_fit(clients, new_study):
    study = new_study()
    before = saved(study)
    url = section_url(study, "design")
    framing = {
        "factor-2-name": "framing",
        "factor-2-levels": "formal\ncasual",
        "factor-2-assignment": "within",
    }
    response = submit(clients["owner"], url, framing)
    assert response.status_code == 400
    errors = errors_of(response.content.decode(), "items_per_participant")
    assert "multiple of the 10 within-participant cells" in errors
    assert saved(study) == before
    # Both changed on the same page: saved.
    response = submit(clients["owner"], url, {**framing, "items_per_participant": "10"})
    assert response.status_code == 302
    assert saved(study)["items_per_participant"] == 10


def test_a_problem_of_another_section_goes_in_the_summary_with_a_link(clients, new_study):
    study = new_study()
    client = clients["owner"]
    response = submit(
        client,
        section_url(study, "analysis"),
        {"composite-0-name": "overall", "composite-0-items": "helpfulness"},
    )
    assert response.status_code == 302
    before = saved(study)
    # Renaming the question would leave the composite naming a question that is gone.
    response = submit(client, section_url(study, "questions"), {"question-0-key": "helpful"})
    assert response.status_code == 400
    summary = response.content.decode().split('id="problems"', 1)[1].split("</div>", 1)[0]
    assert "analysis.composites[0].items[0]" in summary
    assert f'href="{section_url(study, "analysis")}"' in summary
    assert saved(study) == before


def test_questions_add_reorder_delete_round_trip(clients, new_study):
    study = new_study()
    url = section_url(study, "questions")
    client = clients["owner"]
    # "Add another question" adds a blank form and saves nothing.
    response = submit(client, url, {}, button="add_question")
    assert response.status_code == 200
    assert 'name="question-2-key"' in response.content.decode()
    # The added row starts from the form's defaults, as the first blank row does.
    assert re.search(r'name="question-2-points" value="7"', response.content.decode())
    response = submit(
        client,
        url,
        {
            "question-1-key": "clarity",
            "question-1-construct": "affect",
            "question-1-text": "The response was clear.",
            "question-1-points": "5",
            "question-1-anchors": "1: Not at all\n5: Very",
            "question-1-reverse_coded": "on",
            "question-1-required": None,
            "question-1-ORDER": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()
    clarity = {
        "key": "clarity",
        "construct": "affect",
        "text": "The response was clear.",
        "scale": {"points": 5, "anchors": {1: "Not at all", 5: "Very"}},
        "reverse_coded": True,
        "required": False,
    }
    spec = exported(client, study)
    assert spec["questions"][0] == clarity
    assert [q["key"] for q in spec["questions"]] == ["clarity", "helpfulness"]
    response = submit(client, url, {"question-1-DELETE": "on"})
    assert response.status_code == 302
    assert exported(client, study)["questions"] == [clarity]


def test_a_one_point_scale_is_shown_next_to_its_points(clients, new_study):
    study = new_study()
    before = saved(study)
    response = submit(clients["owner"], section_url(study, "questions"), {"question-0-points": "1"})
    assert response.status_code == 400
    assert "between 2 and 11" in errors_of(response.content.decode(), "question-0-points")
    assert saved(study) == before


def test_an_unreadable_anchor_line_is_shown_next_to_the_anchors(clients, new_study):
    study = new_study()
    response = submit(
        clients["owner"],
        section_url(study, "questions"),
        {"question-0-anchors": "1: Strongly disagree\nStrongly agree"},
    )
    assert response.status_code == 400
    assert "line 2" in errors_of(response.content.decode(), "question-0-anchors")


def test_attention_checks_round_trip_and_a_wrong_answer_point_is_refused(clients, new_study):
    study = new_study()
    url = section_url(study, "attention")
    client = clients["owner"]
    check = {
        "check-0-key": "attention_1",
        "check-0-text": "Please select 'Disagree'.",
        "check-0-points": "5",
        "check-0-anchors": "1: Strongly disagree\n2: Disagree\n5: Strongly agree",
        "check-0-correct": "2",
        "check-0-after_item": "3",
    }
    response = submit(client, url, {**check, "check-0-correct": "9"})
    assert response.status_code == 400
    assert "between 1 and 5" in errors_of(response.content.decode(), "check-0-correct")
    assert saved(study)["attention_checks"] == []
    response = submit(client, url, check)
    assert response.status_code == 302
    assert exported(client, study)["attention_checks"] == [
        {
            "key": "attention_1",
            "text": "Please select 'Disagree'.",
            "scale": {
                "points": 5,
                "anchors": {1: "Strongly disagree", 2: "Disagree", 5: "Strongly agree"},
            },
            "correct": 2,
            "after_item": 3,
        }
    ]


def test_recruitment_and_completion_round_trip(clients, new_study):
    study = new_study()
    url = section_url(study, "recruitment")
    client = clients["owner"]
    response = submit(client, url, {"completion_url": "javascript:alert(1)"})
    assert response.status_code == 400
    assert "http:// or https://" in errors_of(response.content.decode(), "completion_url")
    response = submit(
        client,
        url,
        {
            "participant": "PID",
            "study": "SID",
            "session": "SESS",
            "completion_code": "DONE42",
            "completion_url": "https://example.org/done?cc=DONE42",
        },
    )
    assert response.status_code == 302
    spec = exported(client, study)
    assert spec["recruitment_params"] == {"participant": "PID", "study": "SID", "session": "SESS"}
    assert spec["completion"] == {"code": "DONE42", "url": "https://example.org/done?cc=DONE42"}


def test_analysis_round_trips_and_an_unknown_item_is_refused_at_its_field(clients, new_study):
    study = new_study()
    url = section_url(study, "analysis")
    client = clients["owner"]
    response = submit(
        client, url, {"composite-0-name": "overall", "composite-0-items": "helpfulnes"}
    )
    assert response.status_code == 400
    assert "did you mean 'helpfulness'" in errors_of(response.content.decode(), "composite-0-items")
    response = submit(
        client,
        url,
        {
            "reference_level": "partial_compliance",
            "baseline_level": "redirection",
            "composite-0-name": "overall",
            "composite-0-items": "helpfulness",
        },
    )
    assert response.status_code == 302
    assert exported(client, study)["analysis"] == {
        "reference_level": "partial_compliance",
        "baseline_level": "redirection",
        "composites": [{"name": "overall", "items": ["helpfulness"]}],
    }


def test_overview_shows_every_section_with_an_edit_link(clients, new_study):
    study = new_study()
    page = clients["owner"].get(f"/studies/{study.slug}/design/").content.decode()
    for section in (
        "metadata",
        "texts",
        "design",
        "questions",
        "attention",
        "recruitment",
        "analysis",
    ):
        assert f'href="{section_url(study, section)}"' in page
    assert f'href="/studies/{study.slug}/design/blocks/"' in page
    assert "helpfulness" in page and "$response_type" in page


def test_unknown_section_is_404(clients, new_study):
    study = new_study()
    assert clients["owner"].get(section_url(study, "nonsense")).status_code == 404


def test_anonymous_links_are_switched_on_and_off_on_the_recruitment_page(clients, new_study):
    study = new_study()
    url = section_url(study, "recruitment")
    client = clients["owner"]
    page = client.get(url).content.decode()
    assert 'name="anonymous_links"' in page
    assert "without a participant id" in page
    assert "anonymous_links" not in form_data(page)  # off by default
    assert submit(client, url, {"anonymous_links": "on"}).status_code == 302
    assert exported(client, study)["anonymous_links"] is True
    assert Study.objects.get(pk=study.pk).anonymous_links is True
    assert form_data(client.get(url).content.decode())["anonymous_links"] == "on"
    # The other recruitment fields are untouched by the switch, and it switches back off.
    assert saved(study)["recruitment_params"]["participant"] == "PROLIFIC_PID"
    assert submit(client, url, {"anonymous_links": None}).status_code == 302
    assert exported(client, study)["anonymous_links"] is False


def test_a_spec_problem_about_anonymous_links_is_shown_at_the_recruitment_page(clients):
    from studies.builder.sections import SECTION_OF_KEY

    assert SECTION_OF_KEY["anonymous_links"] == "recruitment"
