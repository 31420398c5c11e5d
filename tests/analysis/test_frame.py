"""Reading long-format ratings: required columns, numeric values, mapping, kinds, inclusion."""

from __future__ import annotations

import pandas as pd
import pytest

from studies.analysis import AnalysisInputError, read_long_format
from studies.analysis.frame import (
    LONG_COLUMNS,
    REQUIRED_COLUMNS,
    apply_inclusion,
    inclusion_rule,
)


def _rows(**overrides) -> pd.DataFrame:
    base = {
        "participant_id": ["007", "007", "008", "007"],
        "query_id": ["q01", "q02", "q01", None],
        "category": ["c", "c", "c", None],
        "motivation": ["benign", "malicious", "benign", None],
        "response_type": ["full_compliance", "direct_refusal", "full_compliance", None],
        "question": ["helpfulness", "helpfulness", "helpfulness", "attention_1"],
        "value": ["5", "2", "6", "3"],
        "kind": ["stimulus", "stimulus", "stimulus", "attention"],
        "correct": [None, None, None, "3"],
        "participant_status": ["completed", "completed", "returned", "completed"],
    }
    base.update(overrides)
    return pd.DataFrame(base)


def test_long_columns_list_required_then_optional():
    assert LONG_COLUMNS[: len(REQUIRED_COLUMNS)] == REQUIRED_COLUMNS
    assert {"alignment", "item_position", "kind", "correct", "participant_status"} <= set(
        LONG_COLUMNS
    )


def test_csv_is_read_with_ids_as_text_and_only_stimulus_rows(tmp_path):
    path = tmp_path / "ratings.csv"
    _rows().to_csv(path, index=False)
    df = read_long_format(path)
    assert len(df) == 3
    assert set(df["kind"]) == {"stimulus"}
    assert df["participant_id"].tolist() == ["007", "007", "008"]
    assert df["value"].dtype == float
    everything = read_long_format(path, keep_attention=True)
    assert len(everything) == 4
    assert everything.loc[3, "correct"] == 3


def test_missing_columns_are_listed_with_what_is_there():
    frame = _rows().drop(columns=["query_id", "motivation"])
    with pytest.raises(AnalysisInputError) as err:
        read_long_format(frame)
    message = str(err.value)
    assert "missing required column(s): query_id, motivation" in message
    assert "participant_id" in message and "value" in message


def test_non_numeric_values_name_their_csv_lines(tmp_path):
    path = tmp_path / "ratings.csv"
    _rows(value=["5", "lots", "6", ""]).to_csv(path, index=False)
    with pytest.raises(AnalysisInputError) as err:
        read_long_format(path)
    assert "line 3" in str(err.value) and "line 5" in str(err.value)
    assert "line 2" not in str(err.value)


def test_non_numeric_values_in_a_frame_name_index_labels():
    with pytest.raises(AnalysisInputError, match="row 1"):
        read_long_format(_rows(value=[5, "x", 6, 3]))


def test_empty_key_in_a_rating_row_is_an_error():
    with pytest.raises(AnalysisInputError, match="response_type is empty"):
        read_long_format(_rows(response_type=["full_compliance", " ", "full_compliance", None]))


def test_column_map_renames_before_checking():
    frame = _rows().rename(columns={"participant_id": "PROLIFIC_PID", "value": "score"})
    df = read_long_format(frame, {"PROLIFIC_PID": "participant_id", "score": "value"})
    assert df["participant_id"].tolist() == ["007", "007", "008"]
    with pytest.raises(AnalysisInputError, match="nope"):
        read_long_format(frame, {"nope": "participant_id"})


def test_unknown_kind_is_an_error():
    with pytest.raises(AnalysisInputError, match="kind must be"):
        read_long_format(_rows(kind=["stimulus", "practice", "stimulus", "attention"]))


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(AnalysisInputError, match="no such file"):
        read_long_format(tmp_path / "absent.csv")


def test_inclusion_keeps_listed_statuses_and_says_so():
    df = read_long_format(_rows())
    assert apply_inclusion(df)["participant_id"].tolist() == ["007", "007"]
    assert "completed" in inclusion_rule(df)
    assert len(apply_inclusion(df, ("completed", "returned"))) == 3
    assert len(apply_inclusion(df, None)) == 3
    assert "all participants" in inclusion_rule(df, None)
    no_column = df.drop(columns=["participant_status"])
    assert len(apply_inclusion(no_column)) == 3
    assert "no participant_status" in inclusion_rule(no_column)
