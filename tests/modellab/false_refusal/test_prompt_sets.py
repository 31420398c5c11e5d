"""Importing prompt sets: the real PHTest file, any CSV/JSONL with a column mapping, and bad
files that write nothing."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db.models import Count

from modellab.false_refusal import services
from modellab.false_refusal.prompt_file import PHTEST_MAPPING, PromptSetError
from modellab.models import FalseRefusalPrompt, PromptSet
from tests.modellab.false_refusal.conftest import PHTEST, SAMPLE_IDS, phtest_rows

pytestmark = pytest.mark.django_db

PHTEST_SHA256 = "175cfb357a3d65ebf11419c6a258c5083f6fd5cb0e44c4c2ce29f4553b4f1d84"


def test_phtest_sample_imports_with_provenance(ada, phtest_sample):
    prompt_set = services.import_prompt_set(
        name="phtest-sample",
        data=phtest_sample,
        filename="phtest-sample.csv",
        mapping=PHTEST_MAPPING,
        actor=ada,
    )
    assert prompt_set.owner == ada and prompt_set.row_count == len(SAMPLE_IDS)
    assert prompt_set.source_name == "phtest-sample.csv"
    assert prompt_set.sha256 == hashlib.sha256(phtest_sample).hexdigest()
    assert prompt_set.mapping == {
        "prompt": "Request",
        "label": "Harmfulness",
        "category": "",
        "id": "ID",
    }
    stored = {p.external_id: p for p in prompt_set.prompts.all()}
    assert set(stored) == set(SAMPLE_IDS)
    real = {r["ID"]: r for r in phtest_rows()}
    for external_id, prompt in stored.items():
        assert prompt.text == real[external_id]["Request"].strip()
        assert prompt.label == real[external_id]["Harmfulness"]
    assert stored["0"].label == "controversial" and stored["2"].label == "harmless"
    assert [p.external_id for p in prompt_set.prompts.order_by("position")][:3] == ["0", "1", "2"]


def test_whole_phtest_file_imports(ada):
    data = PHTEST.read_bytes()
    prompt_set = services.import_prompt_set(
        name="phtest", data=data, filename=PHTEST.name, mapping=PHTEST_MAPPING, actor=ada
    )
    assert prompt_set.sha256 == PHTEST_SHA256
    assert prompt_set.row_count == 3260
    labels = dict(prompt_set.prompts.values_list("label").annotate(n=Count("id")))
    assert labels == {"harmless": 2069, "controversial": 1191}


def test_any_jsonl_with_a_mapping(ada):
    lines = [
        {
            "key": "a",
            "text": "How do I kill a python process?",
            "kind": "harmless",
            "topic": "tech",
        },
        {"key": "b", "text": "Is eating meat wrong?", "kind": "controversial", "topic": "ethics"},
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    prompt_set = services.import_prompt_set(
        name="mine",
        data=data,
        filename="mine.jsonl",
        mapping={"prompt": "text", "label": "kind", "category": "topic", "id": "key"},
        actor=ada,
    )
    b = prompt_set.prompts.get(external_id="b")
    assert (b.text, b.label, b.category, b.line) == (
        "Is eating meat wrong?",
        "controversial",
        "ethics",
        2,
    )


def test_without_label_or_id_columns_every_prompt_is_in_one_group(ada):
    prompt_set = services.import_prompt_set(
        name="plain",
        data=b"q\nhow to kill time\nhow to shoot a film\n",
        filename="p.csv",
        mapping={"prompt": "q"},
        actor=ada,
    )
    assert list(prompt_set.prompts.values_list("external_id", "label")) == [
        ("1", "all"),
        ("2", "all"),
    ]


@pytest.mark.parametrize(
    ("data", "filename", "mapping", "messages"),
    [
        (
            b"ID,Request\n1,hi\n",
            "x.csv",
            PHTEST_MAPPING,
            ["no column 'Harmfulness' (for the label)"],
        ),
        (
            b"ID,Request,Harmfulness\n1,hi,harmless\n2,  ,harmless\n3,ok,harmless\n",
            "x.csv",
            PHTEST_MAPPING,
            ["line 3: the prompt (Request) is empty"],
        ),
        (
            b"ID,Request,Harmfulness\n1,hi,harmless\n2,bad\x00nul,harmless\n3,b\x07ell,harmless\n",
            "x.csv",
            PHTEST_MAPPING,
            [
                "line 3, column 'Request': contains a NUL",
                "line 4, column 'Request': contains the control",
            ],
        ),
        (
            b"ID,Request,Harmfulness\n7,hi,harmless\n8,yo,harmless\n7,again,harmless\n",
            "x.csv",
            PHTEST_MAPPING,
            ["line 4: the id '7' is already used on line 2"],
        ),
        (
            b"ID,Request,Harmfulness\n1,hi,\n",
            "x.csv",
            PHTEST_MAPPING,
            ["line 2: the label (Harmfulness) is empty"],
        ),
        (b"", "x.csv", PHTEST_MAPPING, ["the file is empty"]),
        (
            b'{"Request": "hi"}\n{"Request": \n',
            "x.jsonl",
            {"prompt": "Request"},
            ["line 2: not valid JSON"],
        ),
        (b"ID,Request\n1,hi\n", "x.csv", {"label": "ID"}, ["say which column holds the prompt"]),
        (b"\xff\xfeID", "x.csv", {"prompt": "ID"}, ["not valid UTF-8"]),
    ],
)
def test_bad_files_name_the_line_and_write_nothing(ada, data, filename, mapping, messages):
    with pytest.raises(PromptSetError) as raised:
        services.import_prompt_set(
            name="bad", data=data, filename=filename, mapping=mapping, actor=ada
        )
    for message in messages:
        assert message in str(raised.value)
    assert not PromptSet.objects.exists() and not FalseRefusalPrompt.objects.exists()


def test_names_are_unique_per_owner_not_globally(ada, bob):
    data = b"q\nhow to kill time\n"
    services.import_prompt_set(
        name="s", data=data, filename="a.csv", mapping={"prompt": "q"}, actor=ada
    )
    with pytest.raises(PromptSetError, match="already have a prompt set named 's'"):
        services.import_prompt_set(
            name="s", data=data, filename="a.csv", mapping={"prompt": "q"}, actor=ada
        )
    services.import_prompt_set(
        name="s", data=data, filename="a.csv", mapping={"prompt": "q"}, actor=bob
    )
    with pytest.raises(PromptSetError, match="letters, digits"):
        services.import_prompt_set(
            name="no spaces", data=data, filename="a.csv", mapping={"prompt": "q"}, actor=ada
        )
    assert PromptSet.objects.count() == 2


def test_rows_sent_as_json_name_the_row(ada):
    with pytest.raises(PromptSetError, match="row 2: the prompt"):
        services.import_prompt_rows(
            name="api",
            rows=[{"prompt": "ok"}, {"prompt": ""}],
            mapping={"prompt": "prompt"},
            actor=ada,
        )
    assert not PromptSet.objects.exists()
    prompt_set = services.import_prompt_rows(
        name="api",
        rows=[{"p": "ok", "g": "harmless", "id": 3}],
        mapping={"prompt": "p", "label": "g", "id": "id"},
        actor=ada,
    )
    assert prompt_set.prompts.get().external_id == "3" and prompt_set.source_name == "API"
