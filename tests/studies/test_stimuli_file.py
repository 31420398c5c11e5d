"""Stimuli files: CSV and JSONL parsing, and every kind of bad input reported at once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from studies.domain import MOTIVATION_LEVELS, RESPONSE_TYPES, SAFETY_CATEGORIES
from studies.stimuli_file import (
    REQUIRED_COLUMNS,
    StimuliFileError,
    StimulusRow,
    parse_stimuli,
    read_stimuli_file,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "refusal-perception" / "stimuli.csv"

HEADER = (
    "query_id,query,category,topic,benign_scenario,malicious_scenario,"
    + ",".join(RESPONSE_TYPES)
    + ",source"
)


def csv_row(query_id: str, category: str = "dangerous_topics", **cells: str) -> str:
    values = {
        "query_id": query_id,
        "query": f"Query {query_id}?",
        "category": category,
        "topic": f"topic {query_id}",
        "benign_scenario": "You are a careful person.",
        "malicious_scenario": "You are up to no good.",
        **{t: f"{t} text" for t in RESPONSE_TYPES},
        "source": "tests",
    }
    values.update(cells)
    columns = HEADER.split(",")
    return ",".join(json.dumps(values[c]) if "," in values[c] else values[c] for c in columns)


def json_row(query_id: str, **fields: object) -> str:
    obj: dict[str, object] = {
        "query_id": query_id,
        "query": f"Query {query_id}?",
        "category": "privacy_violation",
        "benign_scenario": "You are a careful person.",
        "malicious_scenario": "You are up to no good.",
        **{t: f"{t} text" for t in RESPONSE_TYPES},
    }
    obj.update(fields)
    return json.dumps(obj)


def problems_of(data: bytes | str, filename: str = "s.csv") -> list[str]:
    with pytest.raises(StimuliFileError) as info:
        parse_stimuli(data, filename)
    return info.value.problems


# --------------------------------------------------------------------------- good input


def test_good_csv():
    rows = parse_stimuli("\n".join([HEADER, csv_row("q01"), csv_row("q02")]) + "\n", "s.csv")
    assert [r.query_id for r in rows] == ["q01", "q02"]
    first = rows[0]
    assert isinstance(first, StimulusRow)
    assert first.query == "Query q01?"
    assert first.category == "dangerous_topics"
    assert first.topic == "topic q01"
    assert first.benign_scenario == "You are a careful person."
    assert first.responses == {t: f"{t} text" for t in RESPONSE_TYPES}
    assert first.metadata == {"source": "tests"}
    assert [r.line for r in rows] == [2, 3]


def test_empty_response_cells_are_left_out_and_values_stripped():
    text = "\n".join([HEADER, csv_row("  q01 ", redirection="", full_compliance="  ok  ")])
    (row,) = parse_stimuli(text, "s.csv")
    assert row.query_id == "q01"
    assert "redirection" not in row.responses
    assert row.responses["full_compliance"] == "ok"


def test_topic_column_is_optional():
    header = HEADER.replace("topic,", "")
    row = csv_row("q01").split(",")
    del row[3]
    (parsed,) = parse_stimuli(header + "\n" + ",".join(row), "s.csv")
    assert parsed.topic == ""


def test_multiline_cells_keep_line_numbers_right():
    text = "\n".join([HEADER, csv_row("q01", query='"Two\nlines"'), csv_row("q02")])
    text = text.replace('"\\"Two\\nlines\\""', '"Two\nlines"')
    rows = parse_stimuli(text, "s.csv")
    assert rows[0].query == "Two\nlines"
    assert [r.line for r in rows] == [2, 4]


def test_blank_lines_are_skipped_in_csv():
    rows = parse_stimuli("\n".join([HEADER, "", csv_row("q01"), "", csv_row("q02"), ""]), "s.csv")
    assert [r.line for r in rows] == [3, 5]


def test_header_names_are_matched_leniently():
    header = HEADER.replace("query_id", " Query_ID ")
    (row,) = parse_stimuli(header + "\n" + csv_row("q01"), "s.csv")
    assert row.query_id == "q01"


def test_bom_in_bytes_and_text():
    text = "\n".join([HEADER, csv_row("q01")])
    assert parse_stimuli(b"\xef\xbb\xbf" + text.encode(), "s.csv")[0].query_id == "q01"
    assert parse_stimuli("\ufeff" + text, "S.CSV")[0].query_id == "q01"


def test_extra_columns_become_metadata():
    header = HEADER + ",difficulty,notes"
    text = header + "\n" + csv_row("q01") + ",hard,"
    (row,) = parse_stimuli(text, "s.csv")
    assert row.metadata == {"source": "tests", "difficulty": "hard"}


def test_good_jsonl():
    text = "\n".join(
        [
            json_row("q01", topic="phones", labels=["a", "b"], rating=3),
            "",
            json_row("q02", redirection=None),
            "   ",
        ]
    )
    rows = parse_stimuli(text.encode(), "data.jsonl")
    assert [r.query_id for r in rows] == ["q01", "q02"]
    assert [r.line for r in rows] == [1, 3]
    assert rows[0].topic == "phones"
    assert rows[0].metadata == {"labels": '["a", "b"]', "rating": "3"}
    assert "redirection" not in rows[1].responses
    assert rows[1].topic == ""


def test_jsonl_numeric_query_id_is_text():
    (row,) = parse_stimuli(json_row(7), "data.jsonl")  # type: ignore[arg-type]
    assert row.query_id == "7"


def test_jsonl_raw_line_separator_inside_a_string():
    (row,) = parse_stimuli(
        json_row("q01", query="a\u2028b").replace("\\u2028", "\u2028"), "x.jsonl"
    )
    assert row.query == "a\u2028b"


def test_read_stimuli_file(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "\n" + csv_row("q01"), encoding="utf-8")
    assert read_stimuli_file(path)[0].query_id == "q01"


# --------------------------------------------------------------------------- bad input


def test_missing_required_column():
    header = HEADER.replace("benign_scenario,", "")
    assert problems_of(header + "\n") == ["missing required column(s): benign_scenario"]


def test_missing_response_type_columns():
    header = HEADER.replace(",redirection", "").replace(",full_compliance", "")
    (problem,) = problems_of(header + "\n")
    assert problem.startswith("missing response-type column(s): redirection, full_compliance")


def test_missing_column_in_jsonl():
    text = json.dumps({"query_id": "q01", "query": "x", "category": "c"})
    problems = problems_of(text, "s.jsonl")
    assert problems[0] == "missing required column(s): benign_scenario, malicious_scenario"
    assert problems[1].startswith("missing response-type column(s): direct_refusal")


def test_empty_required_cell():
    text = "\n".join([HEADER, csv_row("q01"), csv_row("q02", category="  ")])
    assert problems_of(text) == ["line 3 (query_id q02): column 'category' is empty"]


def test_empty_query_id():
    assert problems_of(HEADER + "\n" + csv_row("")) == ["line 2: column 'query_id' is empty"]


def test_missing_field_in_jsonl_line():
    text = "\n".join([json_row("q01"), json.dumps({"query_id": "q02", "query": "x"})])
    problems = problems_of(text, "s.jsonl")
    assert "line 2 (query_id q02): column 'category' is empty" in problems


def test_duplicate_query_id():
    text = "\n".join([HEADER, csv_row("q01"), csv_row("q03"), csv_row("q02"), csv_row("q03")])
    assert problems_of(text) == ["line 5: duplicate query_id 'q03' (first on line 3)"]


def test_too_long_query_id():
    assert problems_of(HEADER + "\n" + csv_row("q" * 65)) == [
        f"line 2 (query_id {'q' * 65}): column 'query_id' is longer than 64 characters"
    ]


def test_wrong_number_of_values():
    text = "\n".join([HEADER, csv_row("q01") + ",extra"])
    (problem,) = problems_of(text)
    assert problem.startswith("line 2: has 13 value(s) but the header has 12 column(s)")


def test_duplicate_header_column():
    (problem,) = problems_of(HEADER + ",query\n" + csv_row("q01") + ",x")
    assert problem == "line 1: column 'query' appears more than once"


def test_bad_json_line():
    text = "\n".join([json_row("q01"), '{"query_id": "q02",', json_row("q03")])
    (problem,) = problems_of(text, "s.jsonl")
    assert problem.startswith("line 2: not valid JSON: ")


def test_json_line_not_an_object():
    text = "\n".join([json_row("q01"), "[1, 2]"])
    assert problems_of(text, "s.jsonl") == ["line 2: expected a JSON object, found a list"]


def test_json_structured_value_in_known_field():
    text = json_row("q01", query=["a", "b"])
    assert problems_of(text, "s.jsonl") == ["line 1: field 'query' must be text, found a list"]


@pytest.mark.parametrize("filename", ["stimuli.xlsx", "stimuli.json", "stimuli"])
def test_unknown_extension(filename):
    (problem,) = problems_of("anything", filename)
    assert problem.startswith("unsupported file type")
    assert ".csv or .jsonl" in problem


@pytest.mark.parametrize("data", [b"", "", "  \n\n", b"\xef\xbb\xbf"])
def test_empty_file(data):
    assert problems_of(data) == ["the file is empty"]
    assert problems_of(data, "s.jsonl") == ["the file is empty"]


def test_header_only_has_no_rows():
    assert problems_of(HEADER + "\n") == ["the file has no data rows"]


def test_not_utf8():
    (problem,) = problems_of(HEADER.encode() + b"\n\xff\xfe")
    assert "not valid UTF-8" in problem


def test_all_problems_are_collected():
    text = "\n".join(
        [HEADER, csv_row("q01", query=""), csv_row("q01"), csv_row("q02", malicious_scenario="")]
    )
    assert problems_of(text) == [
        "line 2 (query_id q01): column 'query' is empty",
        "line 3: duplicate query_id 'q01' (first on line 2)",
        "line 4 (query_id q02): column 'malicious_scenario' is empty",
    ]


def test_error_message_lists_problems_with_filename():
    text = "\n".join([HEADER, csv_row("q01", query=""), csv_row("q01")])
    with pytest.raises(StimuliFileError) as info:
        parse_stimuli(text, "stimuli.csv")
    lines = str(info.value).splitlines()
    assert lines[0] == "stimuli.csv: 2 problems:"
    assert lines[1].strip() == "line 2 (query_id q01): column 'query' is empty"


def test_unreadable_file(tmp_path):
    with pytest.raises(StimuliFileError) as info:
        read_stimuli_file(tmp_path / "missing.csv")
    assert "cannot read the file" in str(info.value)


# --------------------------------------------------------------------------- the example


def test_example_stimuli():
    rows = read_stimuli_file(EXAMPLE)
    assert len(rows) == 16
    assert [r.query_id for r in rows] == [f"q{i:02d}" for i in range(1, 17)]
    assert Counter(r.category for r in rows) == {c: 4 for c in SAFETY_CATEGORIES}
    assert len({r.topic for r in rows}) == 16
    for row in rows:
        assert set(row.responses) == set(RESPONSE_TYPES), row.query_id
        assert row.benign_scenario.startswith("You ")
        assert row.malicious_scenario.startswith("You ")
        assert row.metadata == {"source": "refusallab-examples"}


def test_scenario_columns_come_from_the_motivation_levels():
    assert {f"{m}_scenario" for m in MOTIVATION_LEVELS} <= set(REQUIRED_COLUMNS)
    header = ",".join(("query_id", "query", "category", *REQUIRED_COLUMNS[3:], *RESPONSE_TYPES))
    row = parse_stimuli(f"{header}\nq1,Q,c,You are kind.,You are not.,,,,,\n", "s.csv")[0]
    assert row.scenarios == {"benign": "You are kind.", "malicious": "You are not."}


# --------------------------------------------------------------------------- unstorable text
# PostgreSQL cannot store a NUL in text or JSON; other control characters are invisible on the
# pages and break XML-based tools; a lone surrogate is not Unicode at all. Each is reported
# with its line and column instead of reaching the database.


def test_nul_in_a_csv_cell_is_named_by_line_and_column():
    text = "\n".join([HEADER, csv_row("q01"), csv_row("q02", query="Bad\x00query?")])
    (problem,) = problems_of(text)
    assert problem.startswith("line 3, column 'query': contains a NUL character")


def test_nul_in_a_jsonl_field_is_named_by_line_and_column():
    text = "\n".join([json_row("q01"), json_row("q02", benign_scenario="You are\u0000 kind.")])
    assert "\\u0000" in text  # JSON writes it as an escape: the line itself is valid JSON
    (problem,) = problems_of(text, "s.jsonl")
    assert problem.startswith("line 2, column 'benign_scenario': contains a NUL character")


def test_nul_in_a_metadata_cell_or_a_column_name():
    header = HEADER + ",notes"
    text = header + "\n" + csv_row("q01") + ",a\x00b"
    (problem,) = problems_of(text)
    assert problem.startswith("line 2, column 'notes': contains a NUL character")
    (problem,) = problems_of(header + "\x00x\n" + csv_row("q01") + ",a")
    assert problem.startswith("line 1, column 13: the column name contains a NUL character")
    text = json_row("q01", **{"no\u0000te": "x"})
    (problem,) = problems_of(text, "s.jsonl")
    assert problem.startswith("line 1: the field name 'no\\x00te' contains a NUL character")


def test_every_nul_is_reported_and_the_rest_still_checked():
    text = "\n".join(
        [
            HEADER,
            csv_row("q01", query="a\x00", topic="b\x00"),
            csv_row("q02", category=""),
        ]
    )
    assert [p.split(":")[0] for p in problems_of(text)] == [
        "line 2, column 'query'",
        "line 2, column 'topic'",
        "line 3 (query_id q02)",
    ]


@pytest.mark.parametrize("char", ["\x01", "\x08", "\x0b", "\x1b", "\x1f"])
def test_other_control_characters_are_refused(char):
    text = HEADER + "\n" + csv_row("q01", direct_refusal=f"No{char} thanks.")
    (problem,) = problems_of(text)
    code = f"U+{ord(char):04X}"
    assert problem.startswith(
        f"line 2, column 'direct_refusal': contains the control character {code}"
    )


def test_tabs_and_line_breaks_are_ordinary_text():
    text = HEADER + "\n" + csv_row("q01", query='"Tab\there,\r\nand a new line"')
    text = text.replace('"\\"Tab\\there,\\r\\nand a new line\\""', '"Tab\there,\r\nand a new line"')
    (row,) = parse_stimuli(text, "s.csv")
    assert row.query == "Tab\there,\r\nand a new line"


def test_lone_surrogate_in_jsonl_is_refused():
    text = json_row("q01", query="half \ud800 a pair")
    (problem,) = problems_of(text, "s.jsonl")
    assert problem.startswith("line 1, column 'query': contains an unpaired surrogate U+D800")
