"""Exported stimuli read back as what was imported: CSV and JSONL, odd text, approved texts only."""

from __future__ import annotations

import dataclasses

import pytest

from studies import selectors, services
from studies.domain import RESPONSE_TYPES
from studies.generation.services import approve_variant, reject_variant
from studies.models import ResponseVariant, Study
from studies.spec import dump_spec, load_spec
from studies.stimuli_export import ExportFormatError, export_columns, stream_stimuli
from studies.stimuli_file import parse_stimuli

pytestmark = pytest.mark.django_db


def export(study: Study, export_format: str = "csv") -> str:
    return "".join(stream_stimuli(study, export_format))


def without_lines(rows: list) -> list:
    """Rows compared by content: the line a row sat on differs between two files."""
    return [dataclasses.replace(row, line=0) for row in rows]


def stored_stimuli(study: Study) -> dict[str, dict]:
    """Everything a study holds about its stimuli that a participant or an analysis sees."""
    out = {}
    for query in study.queries.prefetch_related("scenarios", "variants").order_by("query_id"):
        out[query.query_id] = {
            "query": query.text,
            "category": query.category,
            "topic": query.topic,
            "source": query.source,
            "metadata": query.metadata,
            "scenarios": {s.motivation: s.text for s in query.scenarios.all()},
            "approved": {
                v.response_type: v.text
                for v in query.variants.all()
                if v.review_status == ResponseVariant.ReviewStatus.APPROVED
            },
        }
    return out


def copy_of(study: Study, export_format: str, slug: str = "copy") -> Study:
    """A second study made from the first one's exported spec and exported stimuli."""
    spec = dataclasses.replace(load_spec(dump_spec(selectors.study_spec(study))), slug=slug)
    rows = parse_stimuli(export(study, export_format), f"stimuli.{export_format}")
    return services.import_study(spec=spec, stimuli=rows)


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_seed_example_round_trips_through_an_export(make_study, seed_spec, export_format):
    _, imported_rows = seed_spec
    study = make_study(launch=False)

    rows = parse_stimuli(export(study, export_format), f"stimuli.{export_format}")
    assert without_lines(rows) == without_lines(imported_rows)

    copy = copy_of(study, export_format)
    assert stored_stimuli(copy) == stored_stimuli(study)
    assert len(stored_stimuli(copy)) == 16
    assert all(len(q["approved"]) == len(RESPONSE_TYPES) for q in stored_stimuli(copy).values())
    # The spec travels too: only the slug tells the two studies apart.
    original = selectors.study_spec(study).to_dict()
    copied = selectors.study_spec(copy).to_dict()
    assert {**copied, "slug": original["slug"]} == original


def test_csv_header_is_the_import_format_with_metadata_columns(make_study):
    study = make_study(launch=False)
    header = export(study).splitlines()[0].split(",")
    assert header[:6] == [
        "query_id",
        "category",
        "topic",
        "query",
        "benign_scenario",
        "malicious_scenario",
    ]
    assert header[6:11] == list(RESPONSE_TYPES)
    assert header[11:] == ["source"] == export_columns(study)[11:]


ODD_HEADER = ",".join(
    ["query_id", "category", "topic", "query", "benign_scenario", "malicious_scenario"]
    + [*RESPONSE_TYPES, "source", "note"]
)
ODD_CSV = (
    ODD_HEADER
    + '''
odd-1,cyber,"locks, keys","Line one
line two, with ""quotes"" and a comma","Tu es «ravi» — café ☕, naïve","Line A\r
Line B ""x""",Nein. 🙅,"Because, well:
1. one
2. two",私はできません,"Tab\there",Sure — here's “all” of it,"web, scraped","multi
line note"
odd-2,cyber,,"Unicode line\u2028separator and RTL שלום","b","m",,,"only one",,,,
'''
)


@pytest.mark.parametrize("export_format", ["csv", "jsonl"])
def test_odd_characters_survive_the_round_trip(make_study, export_format):
    rows = parse_stimuli(ODD_CSV, "odd.csv")
    study = make_study(launch=False)
    services.import_stimuli(study=study, rows=rows, replace=True)

    text = export(study, export_format)
    back = parse_stimuli(text, f"odd.{export_format}")
    assert without_lines(back) == without_lines(rows)
    assert back[0].query == 'Line one\nline two, with "quotes" and a comma'
    assert back[0].metadata == {"source": "web, scraped", "note": "multi\nline note"}
    assert back[1].query == "Unicode line\u2028separator and RTL שלום"
    assert back[1].responses == {"redirection": "only one"}

    copy = copy_of(study, export_format)
    assert stored_stimuli(copy) == stored_stimuli(study)


def test_only_approved_texts_are_exported(make_study):
    study = make_study(launch=False)
    q01 = study.queries.get(query_id="q01")
    imported = {v.response_type: v for v in q01.variants.all()}
    # Awaiting review: not exported, the imported (approved) text stays.
    ResponseVariant.objects.create(
        query=q01,
        response_type="direct_refusal",
        model_name="m",
        text="A generated refusal, not reviewed.",
        source=ResponseVariant.Source.GENERATED,
        review_status=ResponseVariant.ReviewStatus.GENERATED,
    )
    # Rejected and nothing else approved: the cell is empty.
    reject_variant(variant=imported["explanation_based"])
    # A generated text approved over the imported one: the generated text is exported.
    generated = ResponseVariant.objects.create(
        query=q01,
        response_type="redirection",
        model_name="m",
        text="A generated redirection, approved.",
        source=ResponseVariant.Source.GENERATED,
        review_status=ResponseVariant.ReviewStatus.GENERATED,
    )
    approve_variant(variant=generated)

    row = next(r for r in parse_stimuli(export(study), "s.csv") if r.query_id == "q01")
    assert row.responses["direct_refusal"] == imported["direct_refusal"].text
    assert "explanation_based" not in row.responses
    assert row.responses["redirection"] == "A generated redirection, approved."

    copy = copy_of(study, "csv")
    assert stored_stimuli(copy) == stored_stimuli(study)
    assert (
        not copy.queries.get(query_id="q01")
        .variants.filter(response_type="explanation_based")
        .exists()
    )


def test_unknown_format_is_refused(make_study):
    study = make_study(launch=False)
    with pytest.raises(ExportFormatError, match="use one of: csv, jsonl"):
        stream_stimuli(study, "xlsx")
