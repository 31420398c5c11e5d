"""Pure design math: factors, the response rule, and the participant plan built at launch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Assignment = Literal["between", "within"]
ItemKind = Literal["stimulus", "attention"]


@dataclass(frozen=True)
class Factor:
    name: str
    levels: tuple[str, ...]
    assignment: Assignment


@dataclass(frozen=True)
class RuleRow:
    """When every ``when`` pair matches an item's levels, show ``show``.

    ``show`` is a response type, or ``"$name"`` meaning "the level of factor ``name``".
    """

    when: dict[str, str]
    show: str


@dataclass(frozen=True)
class AttentionSlot:
    key: str
    after_item: int


@dataclass(frozen=True)
class Design:
    factors: tuple[Factor, ...]
    rule: tuple[RuleRow, ...]
    items_per_participant: int
    attention_checks: tuple[AttentionSlot, ...] = ()


@dataclass(frozen=True)
class QueryRef:
    query_id: str
    category: str


@dataclass(frozen=True)
class PlannedItem:
    position: int
    kind: ItemKind
    levels: dict[str, str] = field(default_factory=dict)
    response_type: str = ""
    motivation: str = ""
    query_id: str | None = None
    category: str = ""
    attention_check: str | None = None


@dataclass(frozen=True)
class PlannedSlot:
    index: int
    cell: dict[str, str]
    items: tuple[PlannedItem, ...]
