"""Researcher-side services on the real PostgreSQL: import, stimuli, launch, spec round trip."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from django.db import DataError

from annotation.models import Slot, SlotItem
from studies import selectors, services
from studies.errors import LaunchRefused, StudyStateError
from studies.models import (
    AuditEvent,
    Query,
    Question,
    QuestionnaireBlock,
    ResponseVariant,
    Study,
)
from studies.spec import AnalysisSpec, dump_spec, load_spec
from studies.stimuli_file import parse_stimuli

pytestmark = pytest.mark.django_db


def test_import_creates_a_draft_with_questions_and_stimuli(seed_spec):
    spec, rows = seed_spec
    study = services.import_study(spec=spec, stimuli=rows)
    assert study.status == Study.Status.DRAFT
    assert study.questions.filter(is_attention_check=False).count() == len(spec.questions)
    assert study.questions.filter(is_attention_check=True).count() == len(spec.attention_checks)
    assert study.queries.count() == len(rows)
    assert ResponseVariant.objects.filter(query__study=study).count() == 5 * len(rows)
    assert AuditEvent.objects.filter(study=study, action="study_imported").exists()


def test_spec_round_trips_through_the_database(seed_spec, every_type_spec):
    for base in (seed_spec, every_type_spec):
        spec, rows = base
        study = services.import_study(spec=spec, stimuli=rows)
        exported = selectors.study_spec(study)
        assert exported == dataclasses.replace(spec, stimuli=None)


def test_reimport_updates_the_draft_in_place(seed_spec):
    spec, rows = seed_spec
    first = services.import_study(spec=spec, stimuli=rows)
    # The composites name questions dropped here, so the analysis section goes too.
    spec = dataclasses.replace(
        spec, title="A new title", questions=spec.questions[:3], analysis=AnalysisSpec()
    )
    second = services.import_study(spec=spec)
    assert first.pk == second.pk
    assert Study.objects.get(pk=first.pk).title == "A new title"
    assert second.questions.filter(is_attention_check=False).count() == 3
    assert second.queries.count() == len(rows)  # stimuli untouched when none are given


def test_launched_study_cannot_be_reimported(make_study, seed_spec):
    make_study(target_participants=4)
    spec, _ = seed_spec
    with pytest.raises(StudyStateError, match="live"):
        services.import_study(spec=spec)


def test_stimuli_replace_swaps_everything_and_merge_upserts(make_study):
    study = make_study(launch=False)
    csv_text = (
        "query_id,query,category,topic,benign_scenario,malicious_scenario,direct_refusal,"
        "explanation_based,redirection,partial_compliance,full_compliance,difficulty\n"
        "q01,New text,dangerous_topics,t,You are b.,You are m.,No.,No because.,Try X.,"
        "Generally.,Do X.,hard\n"
    )
    rows = parse_stimuli(csv_text, "new.csv")
    merged = services.import_stimuli(study=study, rows=rows)
    assert (merged.created, merged.updated) == (0, 1)
    assert study.queries.count() == 16
    q01 = Query.objects.get(study=study, query_id="q01")
    assert q01.text == "New text" and q01.metadata == {"difficulty": "hard"}
    replaced = services.import_stimuli(study=study, rows=rows, replace=True)
    assert replaced.removed == 15
    assert list(study.queries.values_list("query_id", flat=True)) == ["q01"]


def test_stimuli_import_is_all_or_nothing(make_study):
    study = make_study(launch=False)
    before = list(study.queries.values_list("query_id", "text"))
    rows = parse_stimuli(
        "query_id,query,category,topic,benign_scenario,malicious_scenario,direct_refusal,"
        "explanation_based,redirection,partial_compliance,full_compliance\n"
        + "".join(f"n{i},Q{i},c,t,b,m,a,b,c,d,e\n" for i in range(5)),
        "x.csv",
    )
    # A row too long for the database fails the whole import, not just that row.
    rows[3] = rows[3].__class__(**{**rows[3].__dict__, "query_id": "x" * 100})
    with pytest.raises(DataError):
        services.import_stimuli(study=study, rows=rows, replace=True)
    assert list(study.queries.values_list("query_id", "text")) == before


def test_launch_refuses_with_reasons_and_writes_nothing(make_study):
    study = make_study(launch=False)
    ResponseVariant.objects.filter(
        query__study=study, query__query_id="q03", response_type="redirection"
    ).delete()
    Query.objects.filter(study=study, query_id="q05").update(topic="")
    with pytest.raises(LaunchRefused) as caught:
        services.launch_study(study=study)
    message = str(caught.value)
    assert "q03 has no approved response for: redirection" in message
    assert "q05" in message
    study.refresh_from_db()
    assert study.status == Study.Status.DRAFT
    assert not Slot.objects.filter(study=study).exists()


def test_launch_refuses_an_empty_study(make_study, seed_spec):
    spec, _ = seed_spec
    study = services.import_study(spec=spec)
    with pytest.raises(LaunchRefused, match="no queries"):
        services.launch_study(study=study)


def test_launch_builds_the_seed_design(make_study):
    study = make_study(target_participants=16)
    assert study.status == Study.Status.LIVE
    slots = list(Slot.objects.filter(study=study).order_by("index"))
    assert len(slots) == 16
    assert Counter(s.cell["refusal_strategy"] for s in slots) == {
        level: 4
        for level in ("direct_refusal", "explanation_based", "redirection", "partial_compliance")
    }
    for slot in slots:
        items = list(SlotItem.objects.filter(slot=slot, kind="stimulus"))
        assert len(items) == 8
        cells = Counter((i.levels["motivation"], i.levels["alignment"]) for i in items)
        assert set(cells.values()) == {2}
        for item in items:
            comply = (item.levels["motivation"] == "benign") == (
                item.levels["alignment"] == "aligned"
            )
            expected = "full_compliance" if comply else slot.cell["refusal_strategy"]
            assert item.response_type == expected
        checks = SlotItem.objects.filter(slot=slot, kind="attention").count()
        assert checks == 2
    assert AuditEvent.objects.filter(study=study, action="study_launched").exists()


def test_launching_twice_is_refused(make_study):
    study = make_study(target_participants=4)
    with pytest.raises(LaunchRefused, match="live"):
        services.launch_study(study=study)
    assert Slot.objects.filter(study=study).count() == 4


def test_import_writes_blocks_and_their_questions_by_type(every_type_spec):
    spec, rows = every_type_spec
    study = services.import_study(spec=spec, stimuli=rows)
    blocks = list(QuestionnaireBlock.objects.filter(study=study).order_by("order"))
    assert [(b.key, b.placement, b.order) for b in blocks] == [
        ("demographics", "before", 0),
        ("final_comment", "after", 1),
    ]
    assert blocks[0].title == "About you" and blocks[0].intro_md.startswith("A few questions")
    by_key = {q.key: q for q in Question.objects.filter(study=study, block__isnull=False)}
    keys = ("age_group", "ai_tools", "chatbot_days", "ai_trust")
    age, tools, days, trust = (by_key[k] for k in keys)
    assert (age.kind, age.block, age.order, age.required) == ("single_choice", blocks[0], 0, True)
    assert age.options == ["18–24", "25–34", "35–44", "45 or older"]
    assert age.points is None and age.max_length is None and age.anchors == {}
    assert tools.kind == "multiple_choice" and tools.required is False
    assert (days.kind, days.min_value, days.max_value, days.options) == ("number", 0, 7, [])
    assert (trust.kind, trust.points, trust.anchors["5"]) == ("likert", 5, "Strongly agree")
    comment = by_key["comment"]
    assert (comment.kind, comment.max_length, comment.block) == ("free_text", 500, blocks[1])
    # Item questions stay as they were: no block, Likert, in their own order.
    items = Question.objects.filter(study=study, block__isnull=True, is_attention_check=False)
    assert list(items.order_by("order").values_list("key", "kind")) == [
        ("helpfulness", "likert"),
        ("appropriateness", "likert"),
        ("frustration", "likert"),
    ]


def test_blocks_round_trip_and_reimport_replaces_them(every_type_spec):
    spec, rows = every_type_spec
    study = services.import_study(spec=spec, stimuli=rows)
    assert selectors.study_spec(study).blocks == spec.blocks
    assert load_spec(dump_spec(selectors.study_spec(study))) == dataclasses.replace(
        spec, stimuli=None
    )
    services.import_study(spec=dataclasses.replace(spec, blocks=spec.blocks[1:]))
    assert list(QuestionnaireBlock.objects.filter(study=study).values_list("key", flat=True)) == [
        "final_comment"
    ]
    assert not Question.objects.filter(study=study, key="age_group").exists()
    assert selectors.study_spec(study).blocks == spec.blocks[1:]


def test_blocks_do_not_change_what_launch_needs(make_study, every_type_spec):
    study = make_study(launch=False, base=every_type_spec)
    assert study.blocks.count() == 2
    assert selectors.launch_problems(study) == []
    assert services.launch_study(study=study) == study.target_participants
