"""The codebook of a study's exports: every column, question, attention check and block question.

``build_codebook`` reads the study's stored design (no participant data, so no PII) into a
plain dict; ``codebook_json`` and ``codebook_markdown`` render it for download.
"""

from __future__ import annotations

import json
from typing import Any

from annotation import selectors as annotation_selectors
from annotation.answers import DEFAULT_MAX_LENGTH
from annotation.models import Participant, SlotItem
from studies import domain
from studies.models import Question, QuestionnaireBlock, Study

CODEBOOK_VERSION = 1

# How each kind of block question's answer is written in the block-answers export.
BLOCK_VALUE_ENCODING: dict[str, str] = {
    "likert": "the scale point chosen, an integer from 1",
    "single_choice": "the label of the option chosen, exactly as listed",
    "multiple_choice": 'the labels chosen as a JSON list in option order, e.g. ["A", "C"]',
    "free_text": "the text as typed (line breaks as \\n), verbatim: not escaped for spreadsheets",
    "number": "the number entered in decimal notation: 3, 2.5 (whole numbers without a point)",
}

BLOCK_ANSWER_DESCRIPTIONS: dict[str, tuple[str, str]] = {
    "participant_id": (
        "string",
        "pseudonymous participant id, the same as participant_id in the ratings export",
    ),
    "participant_status": ("category", "the participant's status at export time"),
    "excluded": (
        "boolean",
        "True when the participant is excluded from analysis (quality flags or a researcher's "
        "decision)",
    ),
    "is_pilot": ("boolean", "True when the participant took part in the pilot launch"),
    "block": ("category", "the questionnaire block's key"),
    "question": ("category", "the block question's key"),
    "type": ("category", "the question's type; says how value is written"),
    "value": (
        "string",
        "the answer, written by type (see Value encoding); empty when an optional question "
        "was left unanswered",
    ),
    "answered_at": (
        "datetime",
        "when the block's page was submitted (ISO 8601, UTC); empty when unanswered",
    ),
}


def _anchors(question: Question) -> dict[str, str]:
    return {
        str(point): label
        for point, label in sorted((int(k), v) for k, v in question.anchors.items())
    }


def _number(value: float | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _factors(study: Study) -> list[dict[str, Any]]:
    return [
        {
            "name": factor["name"],
            "levels": list(factor.get("levels", [])),
            "assignment": factor.get("assignment", ""),
        }
        for factor in study.design.get("factors", [])
    ]


def _ratings_columns(study: Study, item_questions, checks) -> list[dict[str, Any]]:
    factors = {f["name"]: f for f in _factors(study)}
    scored = [*item_questions, *checks]
    max_points = max((q.points or 0 for q in scored), default=0)
    categories = sorted(set(study.queries.values_list("category", flat=True)))
    known: dict[str, tuple[str, list[Any] | str]] = {
        "participant_id": ("string", "16 hexadecimal digits"),
        "participant_status": ("category", list(Participant.Status.values)),
        "excluded": ("boolean", ["True", "False"]),
        "is_pilot": ("boolean", ["True", "False"]),
        "query_id": ("string", "a query id of the study's stimuli"),
        "category": ("category", categories),
        "topic": ("string", "a topic of the study's stimuli"),
        domain.MOTIVATION_FACTOR: (
            "category",
            factors[domain.MOTIVATION_FACTOR]["levels"]
            if domain.MOTIVATION_FACTOR in factors
            else list(domain.MOTIVATION_LEVELS),
        ),
        domain.RESPONSE_TYPE_FACTOR: ("category", list(domain.RESPONSE_TYPES)),
        "question": ("category", [q.key for q in scored]),
        "value": ("integer", f"1–{max_points}" if max_points else "scale points from 1"),
        "kind": ("category", list(SlotItem.Kind.values)),
        "correct": ("integer", f"1–{max_points} on attention rows; empty for stimuli"),
        "item_position": ("integer", f"1–{study.items_per_participant + len(checks)}"),
        "shown_at": ("datetime", "ISO 8601, UTC"),
        "answered_at": ("datetime", "ISO 8601, UTC"),
        "ms_on_page": ("integer", "0 or more; empty if unknown"),
    }
    columns = []
    for name in annotation_selectors.long_format_columns(study):
        if name in known:
            kind, values = known[name]
            meaning = domain.LONG_FORMAT_DESCRIPTIONS.get(name, "")
        elif name in factors:
            factor = factors[name]
            kind, values = "category", factor["levels"]
            meaning = f"the level of the factor {name} ({factor['assignment']} participants)"
        else:
            kind, values = "string", ""
            meaning = domain.LONG_FORMAT_DESCRIPTIONS.get(name, "")
        columns.append({"name": name, "meaning": meaning, "type": kind, "values": values})
    return columns


def _block_question(question: Question) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": question.key,
        "type": question.kind,
        "text": question.text,
        "required": question.required,
    }
    if question.kind == Question.Kind.LIKERT:
        entry["scale"] = {"points": question.points, "anchors": _anchors(question)}
    elif question.kind in (Question.Kind.SINGLE_CHOICE, Question.Kind.MULTIPLE_CHOICE):
        entry["options"] = list(question.options)
    elif question.kind == Question.Kind.FREE_TEXT:
        entry["max_length"] = question.max_length or DEFAULT_MAX_LENGTH
    elif question.kind == Question.Kind.NUMBER:
        entry["min"] = _number(question.min_value)
        entry["max"] = _number(question.max_value)
    return entry


def build_codebook(study: Study) -> dict[str, Any]:
    """The study's codebook as a JSON-ready dict (design only: nothing about participants)."""
    item_questions = list(
        study.questions.filter(block__isnull=True, is_attention_check=False).order_by("order")
    )
    checks = list(study.questions.filter(is_attention_check=True).order_by("after_item", "order"))
    blocks = annotation_selectors.study_blocks(study.pk)
    block_questions = {
        b.pk: list(Question.objects.filter(block=b).order_by("order", "pk")) for b in blocks
    }
    return {
        "codebook_version": CODEBOOK_VERSION,
        "study": {
            "slug": study.slug,
            "title": study.title,
            "items_per_participant": study.items_per_participant,
            "factors": _factors(study),
        },
        "files": {
            "ratings.csv": {
                "description": (
                    "Long format: one row per participant × rated item × question. "
                    "Attention checks are rows with kind = attention."
                ),
                "columns": _ratings_columns(study, item_questions, checks),
            },
            "block-answers.csv": {
                "description": (
                    "One row per participant × question of every questionnaire block the "
                    "participant submitted."
                ),
                "columns": [
                    {
                        "name": name,
                        "meaning": BLOCK_ANSWER_DESCRIPTIONS[name][1],
                        "type": BLOCK_ANSWER_DESCRIPTIONS[name][0],
                        "values": _block_column_values(name, blocks, block_questions),
                    }
                    for name in annotation_selectors.BLOCK_ANSWER_COLUMNS
                ],
                "value_encoding": dict(BLOCK_VALUE_ENCODING),
            },
        },
        "item_questions": [
            {
                "key": q.key,
                "construct": q.construct,
                "text": q.text,
                "scale": {"points": q.points, "anchors": _anchors(q)},
                "reverse_coded": q.reverse_coded,
                "required": q.required,
            }
            for q in item_questions
        ],
        "attention_checks": [
            {
                "key": q.key,
                "text": q.text,
                "scale": {"points": q.points, "anchors": _anchors(q)},
                "correct": q.correct_value,
                "after_item": q.after_item,
            }
            for q in checks
        ],
        "blocks": [
            {
                "key": b.key,
                "title": b.title,
                "placement": b.placement,
                "questions": [_block_question(q) for q in block_questions[b.pk]],
            }
            for b in blocks
        ],
    }


def _block_column_values(
    name: str, blocks: list[QuestionnaireBlock], questions: dict[int, list[Question]]
) -> list[str] | str:
    if name == "participant_status":
        return list(Participant.Status.values)
    if name == "is_pilot":
        return ["True", "False"]
    if name == "block":
        return [b.key for b in blocks]
    if name == "question":
        return [q.key for b in blocks for q in questions[b.pk]]
    if name == "type":
        return list(Question.Kind.values)
    if name == "participant_id":
        return "16 hexadecimal digits"
    if name == "answered_at":
        return "ISO 8601, UTC"
    return "see Value encoding"


def export_codebook(
    study: Study,
    files: list[tuple[str, Any]],
    *,
    export_format: str,
    inclusion: str,
    include_recruitment_ids: bool,
) -> dict[str, Any]:
    """The codebook of one export: the study's design (questions, scales, anchors, constructs,
    reverse coding, factors and levels) and every column of every file written, with its type,
    how this file's format writes it, and its meaning. ``files`` pairs each file's path in the
    export with its studies.datasets.tables.Table."""
    from studies.datasets.tables import NULL_ENCODING, PARTICIPANT_TABLES, TYPE_ENCODINGS

    codebook = build_codebook(study)
    codebook["export"] = {
        "format": export_format,
        "inclusion": {
            "rule": inclusion,
            "meaning": domain.INCLUSION_RULES[inclusion],
            "applies_to": sorted(PARTICIPANT_TABLES),
            "note": "withdrawn participants never appear, whatever the rule",
        },
        "recruitment_ids_included": include_recruitment_ids,
        "types": {
            kind: dict(encodings, null=", ".join(f"{k}: {v}" for k, v in NULL_ENCODING.items()))
            for kind, encodings in TYPE_ENCODINGS.items()
        },
    }
    entries = {}
    for path, table in files:
        file_format = path.rsplit(".", 1)[-1]
        entries[path] = {
            "table": table.name,
            "description": table.description,
            "columns": [
                {
                    "name": column.name,
                    "meaning": column.meaning,
                    "type": column.type,
                    "encoding": TYPE_ENCODINGS[column.type][file_format],
                    "values": column.values,
                }
                for column in table.columns
            ],
        }
        if table.name == "block_answers":
            entries[path]["value_encoding"] = dict(BLOCK_VALUE_ENCODING)
    codebook["files"] = entries
    return codebook


def codebook_json(codebook: dict[str, Any]) -> str:
    return json.dumps(codebook, indent=2, ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    """A Markdown table cell: lists joined, pipes escaped, one line."""
    if isinstance(value, list | tuple):
        value = ", ".join(f"`{v}`" for v in value)
    elif isinstance(value, bool):
        value = "yes" if value else "no"
    elif value is None:
        value = ""
    text = str(value).replace("\\", "\\\\").replace("|", "\\|")
    return " ".join(text.split())


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _scale_text(scale: dict[str, Any]) -> str:
    anchors = "; ".join(f"{point} = {label}" for point, label in scale["anchors"].items())
    return f"{scale['points']} points" + (f" ({anchors})" if anchors else "")


def _block_details(question: dict[str, Any]) -> str:
    kind = question["type"]
    if kind == "likert":
        return _scale_text(question["scale"])
    if kind in ("single_choice", "multiple_choice"):
        # Quoted, since a label may itself contain commas or semicolons.
        return "options: " + ", ".join(f'"{option}"' for option in question["options"])
    if kind == "free_text":
        return f"at most {question['max_length'] or DEFAULT_MAX_LENGTH} characters"
    if kind == "number":
        low, high = question.get("min"), question.get("max")
        if low is None and high is None:
            return "any number"
        if low is None:
            return f"a number of at most {high}"
        if high is None:
            return f"a number of at least {low}"
        return f"a number from {low} to {high}"
    return ""


def codebook_markdown(codebook: dict[str, Any]) -> str:
    """The codebook as a Markdown document, for reading next to the CSV files."""
    study = codebook["study"]
    lines = [f"# Codebook: {study['title']}", "", f"Study `{study['slug']}`.", ""]
    export = codebook.get("export")
    if export:
        rule = export["inclusion"]
        lines += [
            "## This export",
            "",
            f"- Format: {export['format']}.",
            f"- Inclusion rule: `{rule['rule']}` ({rule['meaning']}), applied to "
            + ", ".join(f"`{t}`" for t in rule["applies_to"])
            + f"; {rule['note']}.",
            "- Recruitment ids: "
            + (
                "included (`recruitment_participant_id`), on the owner's explicit request."
                if export["recruitment_ids_included"]
                else "not included; participants appear only under their pseudonym."
            ),
            "",
            "Types and how each format writes them:",
            "",
        ]
        lines += _table(
            ["type", "csv", "jsonl", "parquet"],
            [[k, v["csv"], v["jsonl"], v["parquet"]] for k, v in export["types"].items()],
        )
        lines += ["Absent values: an empty cell in CSV, null in JSONL and Parquet.", ""]
    if study["factors"]:
        lines += ["## Factors", ""]
        lines += _table(
            ["factor", "assignment", "levels"],
            [[f["name"], f["assignment"], f["levels"]] for f in study["factors"]],
        )
    for filename, spec in codebook["files"].items():
        lines += [f"## `{filename}`", "", spec["description"], ""]
        lines += _table(
            ["column", "meaning", "type", "allowed values"],
            [
                [c["name"], c["meaning"], c["type"], c["values"] or c.get("encoding", "")]
                for c in spec["columns"]
            ],
        )
        if "value_encoding" in spec:
            lines += ["Value encoding by question type:", ""]
            lines += [f"- `{kind}`: {text}" for kind, text in spec["value_encoding"].items()]
            lines.append("")
    lines += [
        "## Item questions",
        "",
        "Asked under every rated item (`question` in ratings.csv).",
        "",
    ]
    lines += _table(
        ["key", "construct", "text", "scale", "reverse coded", "required"],
        [
            [
                q["key"],
                q["construct"],
                q["text"],
                _scale_text(q["scale"]),
                q["reverse_coded"],
                q["required"],
            ]
            for q in codebook["item_questions"]
        ],
    )
    lines += ["## Attention checks", ""]
    if codebook["attention_checks"]:
        lines += _table(
            ["key", "text", "scale", "correct answer", "after item"],
            [
                [c["key"], c["text"], _scale_text(c["scale"]), c["correct"], c["after_item"]]
                for c in codebook["attention_checks"]
            ],
        )
    else:
        lines += ["None.", ""]
    lines += ["## Questionnaire blocks", ""]
    if not codebook["blocks"]:
        lines += ["None.", ""]
    for block in codebook["blocks"]:
        lines += [
            f"### `{block['key']}`: {block['title']}",
            "",
            f"Shown {block['placement']} the rated items.",
            "",
        ]
        lines += _table(
            ["key", "type", "text", "required", "details"],
            [
                [q["key"], q["type"], q["text"], q["required"], _block_details(q)]
                for q in block["questions"]
            ],
        )
    return "\n".join(lines)
