"""The plan preview: between cells, slots per cell and one example participant's sequence."""

from __future__ import annotations

import pytest

from studies.models import StudyMembership

pytestmark = pytest.mark.django_db


def test_without_stimuli_the_preview_shows_the_cells_and_asks_for_stimuli(clients, new_study):
    study = new_study()  # every type within, motivation between, target 100
    page = clients["viewer"].get(f"/studies/{study.slug}/plan/").content.decode()
    assert "motivation=benign" in page and "motivation=malicious" in page
    assert "50 per cell" in page
    assert "The sequence needs stimuli" in page


def test_the_example_participant_sequence_of_the_seed_study(clients, users, make_study):
    study = make_study(launch=False, target_participants=10)
    StudyMembership.objects.create(study=study, user=users["viewer"], role="viewer")
    page = clients["viewer"].get(f"/studies/{study.slug}/plan/").content.decode()
    # Four strategies between participants: 10 slots make 2 or 3 per cell.
    assert "refusal_strategy=partial_compliance" in page
    assert "2 or 3 per cell" in page
    sequence = page.split('class="plan-sequence"', 1)[1].split("</table>", 1)[0]
    rows = sequence.split("<tbody>", 1)[1].count("<tr>")
    assert rows == 10  # 8 rated items and 2 attention checks
    assert sequence.count("topic chosen by participant") == 8
    assert "attention_1" in sequence and "attention_2" in sequence
    assert "motivation=benign, alignment=aligned" in sequence
    assert "full_compliance" in sequence
