"""Writing a study spec back out: a plain dict of it, and YAML in the canonical key order."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from studies.spec.loader import (
    ALL_BLOCK_QUESTION_KEYS,
    ANALYSIS_KEYS,
    ATTENTION_KEYS,
    BLOCK_KEYS,
    COMPLETION_KEYS,
    COMPOSITE_KEYS,
    FACTOR_KEYS,
    QUALITY_KEYS,
    QUALITY_RULE_KEYS,
    QUESTION_KEYS,
    RECRUITMENT_KEYS,
    RULE_KEYS,
    SCALE_KEYS,
    TOP_LEVEL_KEYS,
)
from studies.spec.model import StudySpec


def spec_dict(spec: StudySpec | dict) -> dict:
    """A spec as a plain, freely editable dict (what dump_spec writes and load_spec_data reads)."""
    return copy.deepcopy(spec) if isinstance(spec, dict) else spec.to_dict()


def dump_spec(spec: StudySpec | dict) -> str:
    """YAML text of a spec, such that ``load_spec(dump_spec(s)) == s``."""
    return yaml.dump(
        _canonical_order(spec_dict(spec)),
        Dumper=_SpecDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        # Wide lines keep each question on one line instead of folding it.
        width=4096,
    )


class _SpecDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Anchors in the output (&id001) would only confuse a reader of an exported spec.
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them by hand.
        return super().increase_indent(flow, False)


# Line breaks other than "\n": PyYAML's plain/single-quoted output mangles NEL (U+0085), and
# a literal block would turn "\r\n" into "\n", so such text is written double-quoted (escaped).
_ODD_BREAKS = frozenset("\r\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if _ODD_BREAKS.intersection(value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_SpecDumper.add_representer(str, _represent_str)


def _ordered(mapping: dict, order: tuple[str, ...]) -> dict:
    out = {k: mapping[k] for k in order if k in mapping}
    out.update((k, v) for k, v in mapping.items() if k not in out)
    return out


def _with_ordered_scale(question: dict) -> dict:
    if isinstance(question.get("scale"), dict):
        return {**question, "scale": _ordered(question["scale"], SCALE_KEYS)}
    return question


def _canonical_order(spec: dict) -> dict:
    def scale(s: dict) -> dict:
        return _ordered(s, SCALE_KEYS)

    out = _ordered(spec, TOP_LEVEL_KEYS)
    if isinstance(out.get("completion"), dict):
        out["completion"] = _ordered(out["completion"], COMPLETION_KEYS)
    if isinstance(out.get("recruitment_params"), dict):
        out["recruitment_params"] = _ordered(out["recruitment_params"], RECRUITMENT_KEYS)
    if "factors" in out:
        out["factors"] = [_ordered(f, FACTOR_KEYS) for f in out["factors"]]
    if "response_rule" in out:
        out["response_rule"] = [_ordered(r, RULE_KEYS) for r in out["response_rule"]]
    if isinstance(out.get("analysis"), dict):
        analysis = _ordered(out["analysis"], ANALYSIS_KEYS)
        if isinstance(analysis.get("composites"), list):
            analysis["composites"] = [_ordered(c, COMPOSITE_KEYS) for c in analysis["composites"]]
        out["analysis"] = analysis
    if isinstance(out.get("quality"), dict):
        quality = _ordered(out["quality"], QUALITY_KEYS)
        out["quality"] = {
            name: _ordered(rule, QUALITY_RULE_KEYS[name])
            if isinstance(rule, dict) and name in QUALITY_RULE_KEYS
            else rule
            for name, rule in quality.items()
        }
    for key, order in (("questions", QUESTION_KEYS), ("attention_checks", ATTENTION_KEYS)):
        if key in out:
            out[key] = [{**_ordered(q, order), "scale": scale(q["scale"])} for q in out[key]]
    if isinstance(out.get("blocks"), list):
        out["blocks"] = [
            {
                **_ordered(b, BLOCK_KEYS),
                "questions": [
                    _ordered(_with_ordered_scale(q), ALL_BLOCK_QUESTION_KEYS)
                    for q in b["questions"]
                ],
            }
            for b in out["blocks"]
        ]
    return out
