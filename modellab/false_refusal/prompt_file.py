"""Checking a prompt set's rows against its column mapping before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass

from modellab.table_file import Table
from studies.text_checks import unstorable_character

#: Which column holds what; only ``prompt`` is required. PHTest's columns are the default.
MAPPING_KEYS: tuple[str, ...] = ("prompt", "label", "category", "id")
PHTEST_MAPPING: dict[str, str] = {
    "prompt": "Request",
    "label": "Harmfulness",
    "category": "",
    "id": "ID",
}
# The group every prompt of a file without a label column belongs to.
NO_LABEL = "all"
# Mirrors the column sizes of modellab.models.FalseRefusalPrompt.
MAX_LENGTHS: dict[str, int] = {"id": 200, "label": 100, "category": 200}
MAX_PROBLEMS = 100


class PromptSetError(ValueError):
    """Rows that cannot be imported; ``problems`` names each one's line (or row) and column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        if len(self.problems) == 1:
            return self.problems[0]
        return f"{len(self.problems)} problems:\n" + "\n".join(f"  {p}" for p in self.problems)


@dataclass(frozen=True)
class ParsedPrompt:
    position: int
    external_id: str
    text: str
    label: str
    category: str
    line: int


def clean_mapping(mapping: dict[str, str | None]) -> dict[str, str]:
    """The mapping with every key present (unused ones ""); PromptSetError for a bad one."""
    unknown = sorted(set(mapping) - set(MAPPING_KEYS))
    if unknown:
        raise PromptSetError(
            [f"unknown mapping key(s) {', '.join(unknown)}; use {', '.join(MAPPING_KEYS)}"]
        )
    cleaned = {key: (mapping.get(key) or "").strip() for key in MAPPING_KEYS}
    if not cleaned["prompt"]:
        raise PromptSetError(["say which column holds the prompt"])
    used = [c for c in cleaned.values() if c]
    twice = sorted({c for c in used if used.count(c) > 1})
    if twice:
        raise PromptSetError([f"column {', '.join(twice)} is mapped to two fields"])
    return cleaned


def parse_prompts(table: Table, mapping: dict[str, str], where: str = "line") -> list[ParsedPrompt]:
    """Every row of a text table (``Table.as_text``) as a prompt, or PromptSetError listing
    every problem (``where``: "line" for a file, "row" for rows sent as JSON)."""
    mapping = clean_mapping(mapping)
    missing = [(key, col) for key, col in mapping.items() if col and col not in table.columns]
    if missing:
        have = ", ".join(repr(c) for c in table.columns) or "none"
        raise PromptSetError(
            [
                f"no column {col!r} (for the {key}) in the file; its columns are: {have}"
                for key, col in missing
            ]
        )
    problems: list[str] = []
    prompts: list[ParsedPrompt] = []
    seen_ids: dict[str, int] = {}
    for position, row in enumerate(table.records, start=1):
        at = f"{where} {row.line}"
        values = {key: row.values.get(col, "") if col else "" for key, col in mapping.items()}
        text = values["prompt"].strip()
        if not text:
            problems.append(f"{at}: the prompt ({mapping['prompt']}) is empty")
        for key, value in values.items():
            if reason := unstorable_character(value):
                problems.append(f"{at}, column {mapping[key]!r}: {reason}")
            elif key in MAX_LENGTHS and len(value.strip()) > MAX_LENGTHS[key]:
                problems.append(
                    f"{at}, column {mapping[key]!r}: longer than {MAX_LENGTHS[key]} characters"
                )
        label = values["label"].strip() if mapping["label"] else NO_LABEL
        if not label:
            problems.append(f"{at}: the label ({mapping['label']}) is empty")
        external_id = values["id"].strip() if mapping["id"] else str(position)
        if not external_id:
            problems.append(f"{at}: the id ({mapping['id']}) is empty")
        elif external_id in seen_ids:
            problems.append(
                f"{at}: the id {external_id!r} is already used on {where} {seen_ids[external_id]}"
            )
        else:
            seen_ids[external_id] = row.line
        prompts.append(
            ParsedPrompt(
                position=position,
                external_id=external_id,
                text=text,
                label=label,
                category=values["category"].strip(),
                line=row.line,
            )
        )
        if len(problems) > MAX_PROBLEMS:
            break
    if problems:
        if len(problems) > MAX_PROBLEMS:
            problems = problems[:MAX_PROBLEMS] + ["... and more; fix these first"]
        raise PromptSetError(problems)
    return prompts
