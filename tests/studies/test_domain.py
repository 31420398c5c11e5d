"""The one vocabulary: long-format columns, reserved factor names and status groups agree
with the export, the spec, the stimuli reader, the analysis frame and the models."""

from __future__ import annotations

import dataclasses

import pytest

from annotation import selectors as annotation_selectors
from annotation import services as annotation_services
from annotation.models import Participant
from studies import domain, services
from studies.analysis import frame
from studies.models import Study
from studies.spec import SpecError, load_spec_data, spec_dict
from studies.stimuli_file import REQUIRED_COLUMNS as STIMULI_COLUMNS
from tests.annotation.test_services import complete


def test_reserved_names_are_exactly_the_long_format_columns_but_the_factor_ones():
    # Derived, not listed: a column added to the long format is reserved with no other edit.
    columns = frozenset(domain.LONG_FORMAT_BASE + domain.LONG_FORMAT_TAIL)
    assert domain.RESERVED_FACTOR_NAMES == columns - {"motivation", "response_type"}
    assert {"kind", "correct", "participant_status", "question", "value"} <= (
        domain.RESERVED_FACTOR_NAMES
    )
    assert domain.FACTOR_COLUMNS == {domain.MOTIVATION_FACTOR, domain.RESPONSE_TYPE_FACTOR}
    # Every fixed column is described once, for the codebook and the "reserved" message.
    assert set(domain.LONG_FORMAT_DESCRIPTIONS) == set(domain.LONG_FORMAT_COLUMNS)


def test_analysis_frame_and_stimuli_reader_use_the_same_names():
    assert frame.REQUIRED_COLUMNS == domain.LONG_FORMAT_REQUIRED
    assert set(domain.LONG_FORMAT_COLUMNS) <= set(frame.LONG_COLUMNS)
    for motivation in domain.MOTIVATION_LEVELS:
        assert f"{motivation}_scenario" in STIMULI_COLUMNS


def test_status_groups_cover_the_models_statuses():
    study_statuses = set(Study.Status.values)
    editable = set(domain.STUDY_EDITABLE_STATUSES)
    launched = set(domain.STUDY_LAUNCHED_STATUSES)
    assert editable | launched | {"archived"} == study_statuses
    assert not editable & launched
    assert set(domain.STUDY_ARRIVAL_STATUSES) <= set(domain.STUDY_CONTINUE_STATUSES) <= launched
    open_, finished = (
        set(domain.PARTICIPANT_OPEN_STATUSES),
        set(domain.PARTICIPANT_FINISHED_STATUSES),
    )
    assert open_ | finished == set(Participant.Status.values)
    assert not open_ & finished


@pytest.mark.django_db
def test_the_export_writes_only_domain_columns_and_factors(make_study):
    study = make_study(target_participants=4)
    participant = annotation_services.join_study(study=study, external_id="PID-1", recruitment={})
    annotation_services.give_consent(participant=participant)
    complete(participant)
    rows = list(annotation_selectors.ratings_long_format(study))
    assert rows
    factors = {f["name"] for f in study.design["factors"]}
    for column in rows[0]:
        # A column that is neither a factor nor the domain's would be a name a factor can take.
        assert column in domain.LONG_FORMAT_COLUMNS or column in factors, column
    assert not factors & domain.RESERVED_FACTOR_NAMES


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["kind", "correct", "participant_status", "question", "value"])
def test_a_factor_named_like_a_column_is_refused_and_nothing_is_stored(seed_spec, name):
    spec, _ = seed_spec
    data = spec_dict(spec)
    data["factors"][1]["name"] = name  # alignment, which the rule rows name too
    for row in data["response_rule"]:
        if "alignment" in row["when"]:
            row["when"][name] = row["when"].pop("alignment")
    with pytest.raises(SpecError) as info:
        load_spec_data(data)
    assert [p.path for p in info.value.problems] == ["factors[1].name"]
    assert f"'{name}' is a reserved name" in str(info.value)
    assert not Study.objects.exists()


@pytest.mark.django_db
def test_import_study_checks_a_hand_changed_spec_and_refuses_a_dict(seed_spec):
    spec, _ = seed_spec
    factors = list(spec.factors)
    factors[1] = dataclasses.replace(factors[1], name="kind")
    renamed = dataclasses.replace(spec, factors=tuple(factors))
    # dataclasses.replace skips the validator; import_study validates again.
    with pytest.raises(SpecError, match="'kind' is a reserved name"):
        services.import_study(spec=renamed)
    with pytest.raises(TypeError, match="StudySpec"):
        services.import_study(spec=spec.to_dict())
    assert not Study.objects.exists()
