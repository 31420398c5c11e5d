"""Parsing and validation of study spec files (YAML or JSON) into a typed StudySpec.

The checker walks the parsed data once, collecting every problem with the line and path it
concerns (and a "did you mean" where it helps), while building the normalised plain dict;
only a spec without problems becomes a StudySpec.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from studies.design import check_design
from studies.domain import (
    FACTOR_COLUMNS,
    LONG_FORMAT_DESCRIPTIONS,
    MOTIVATION_FACTOR,
    MOTIVATION_LEVELS,
    RESERVED_FACTOR_NAMES,
    RESPONSE_TYPE_FACTOR,
    RESPONSE_TYPES,
)
from studies.spec.model import (
    CHOICE_TYPES,
    DEFAULT_BASELINE_LEVEL,
    DEFAULT_MAX_BLANK,
    DEFAULT_MAX_LENGTH,
    DEFAULT_MIN_FAILED,
    DEFAULT_MIN_FRACTION_OF_MEDIAN,
    DEFAULT_RECRUITMENT_PARAMS,
    DEFAULT_REFERENCE_LEVEL,
    DEFAULT_RETENTION_DAYS,
    DEFAULT_STRAIGHT_LINING_ITEMS,
    DEFAULT_TIME_LIMIT_MINUTES,
    FREE_TEXT,
    LIKERT,
    MAX_RETENTION_DAYS,
    NUMBER,
    PLACEMENTS,
    QUESTION_TYPES,
    StudySpec,
    design_from_spec,
)
from studies.text_checks import unstorable_character

# Canonical key order of a normalised spec; dump_spec writes keys in exactly this order.
TOP_LEVEL_KEYS: tuple[str, ...] = (
    "slug",
    "title",
    "description",
    "consent",
    "instructions",
    "target_participants",
    "items_per_participant",
    "time_limit_minutes",
    "completion",
    "recruitment_params",
    "anonymous_links",
    "retention_days",
    "topic_choice",
    "seed",
    "factors",
    "response_rule",
    "questions",
    "attention_checks",
    "blocks",
    "analysis",
    "quality",
    "stimuli",
)
COMPLETION_KEYS = ("code", "url")
RECRUITMENT_KEYS = ("participant", "study", "session")
FACTOR_KEYS = ("name", "levels", "assignment")
RULE_KEYS = ("when", "show")
QUESTION_KEYS = ("key", "construct", "text", "scale", "reverse_coded", "required")
SCALE_KEYS = ("points", "anchors")
ATTENTION_KEYS = ("key", "text", "scale", "correct", "after_item")
ANALYSIS_KEYS = ("reference_level", "baseline_level", "composites")
COMPOSITE_KEYS = ("name", "items")
# The quality section: its rules in order, and each rule's fields.
QUALITY_RULE_KEYS: dict[str, tuple[str, ...]] = {
    "attention_checks": ("enabled", "min_failed"),
    "speeders": ("enabled", "min_seconds", "min_fraction_of_median"),
    "straight_lining": ("enabled", "min_items"),
    "duplicates": ("enabled",),
    "blank_items": ("enabled", "max_blank"),
    "screen_out": ("enabled", "code", "url"),
}
QUALITY_KEYS: tuple[str, ...] = tuple(QUALITY_RULE_KEYS)
BLOCK_KEYS = ("key", "title", "intro", "placement", "questions")
# A block question's fields: the common ones, then those of its type.
BLOCK_QUESTION_KEYS = ("key", "type", "text", "required")
TYPE_KEYS: dict[str, tuple[str, ...]] = {
    LIKERT: ("scale",),
    "single_choice": ("options",),
    "multiple_choice": ("options",),
    FREE_TEXT: ("max_length",),
    NUMBER: ("min", "max"),
}
ALL_BLOCK_QUESTION_KEYS = BLOCK_QUESTION_KEYS + ("scale", "options", "max_length", "min", "max")
# Which types a type-specific field belongs to, for "only for ..." messages.
_FIELD_TYPES: dict[str, tuple[str, ...]] = {
    key: tuple(t for t, keys in TYPE_KEYS.items() if key in keys)
    for key in ("scale", "options", "max_length", "min", "max")
}

MIN_POINTS, MAX_POINTS = 2, 11
MIN_MAX_LENGTH, MAX_MAX_LENGTH = 1, 10_000
# Limits mirror the columns of studies.models so a valid spec always fits the database.
MAX_SLUG, MAX_TITLE, MAX_CODE, MAX_URL, MAX_NAME, MAX_LABEL = 80, 200, 64, 500, 64, 200
MAX_POSITIVE_INT = 2_147_483_647
MAX_SEED = 2**63 - 1
MAX_SPEC_CHARS = 1_000_000

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
IDENTIFIER_RE = re.compile(r"[a-z][a-z0-9_]*")
QUESTION_KEY_RE = re.compile(r"[a-z][a-z0-9_-]*")
URL_PARAM_RE = re.compile(r"[A-Za-z0-9_]+")

_INVALID: Any = object()  # returned by checkers for a value that produced a problem


@dataclass(frozen=True)
class SpecProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = ", ".join(p for p in (f"line {self.line}" if self.line else "", self.path) if p)
        return f"{where}: {self.message}" if where else self.message


class SpecError(Exception):
    """A spec that cannot be used; ``problems`` lists every problem found, in line order."""

    def __init__(self, problems: list[SpecProblem], source: str = "<spec>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(f"{self.source}: {p}" for p in self.problems)


# --------------------------------------------------------------------------- public API


def load_spec(text: str, source: str = "<spec>") -> StudySpec:
    """Parse and validate a spec; return it typed or raise SpecError with every problem."""
    spec, _ = _load(text, source, base_dir=None)
    return spec


def load_spec_file(path: str | Path) -> tuple[StudySpec, Path | None]:
    """Load a spec file; also resolve its ``stimuli`` path (relative to the file's folder)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError(
            [SpecProblem("", None, f"cannot read the file: {reason}")], str(path)
        ) from None
    return _load(text, str(path), base_dir=path.resolve().parent)


def load_spec_data(data: Any, source: str = "<form>") -> StudySpec:
    """Validate an already-parsed spec (a form's or an API payload's data) like a file."""
    checker = _Checker({})
    spec = checker.spec(data)
    if checker.problems:
        raise SpecError(checker.problems, source)
    return StudySpec.from_dict(spec)


# --------------------------------------------------------------------------- parsing


def _load(text: str, source: str, base_dir: Path | None) -> tuple[StudySpec, Path | None]:
    if len(text) > MAX_SPEC_CHARS:
        problem = SpecProblem("", None, f"the spec is larger than {MAX_SPEC_CHARS} characters")
        raise SpecError([problem], source)
    data, lines, problems = _parse_yaml(text)
    if problems:
        raise SpecError(problems, source)
    checker = _Checker(lines)
    spec = checker.spec(data)
    stimuli_path = None
    if not checker.problems and base_dir is not None and "stimuli" in spec:
        stimuli_path = (base_dir / spec["stimuli"]).resolve()
        if not stimuli_path.is_file():
            checker.add("stimuli", f"file not found: {stimuli_path}")
    if checker.problems:
        problems = sorted(checker.problems, key=lambda p: p.line or 0)
        raise SpecError(problems, source)
    return StudySpec.from_dict(spec), stimuli_path


def _parse_yaml(text: str) -> tuple[Any, dict[str, int], list[SpecProblem]]:
    """Parse once into a node tree (for line numbers) and the data built from it."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None, {}, [SpecProblem("", 1, "the spec is empty")]
        problems = _duplicate_keys(node)
        if problems:
            return None, {}, problems
        data = loader.construct_document(node)
        lines: dict[str, int] = {}
        # Indexed after construction, which has already expanded merge keys (<<) in place.
        _index_lines(node, "", lines, set())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        detail = exc.problem or exc.context or "unreadable YAML"
        if exc.problem and exc.context:
            # e.g. "expected ',' or ']', but got ':' (while parsing a flow sequence, line 1)"
            where = f", line {exc.context_mark.line + 1}" if exc.context_mark else ""
            detail = f"{exc.problem} ({exc.context}{where})"
        return None, {}, [SpecProblem("", line, f"not valid YAML: {detail}")]
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        message = f"not valid YAML: character #x{exc.character:04x} is not allowed"
        return None, {}, [SpecProblem("", line, message)]
    except yaml.YAMLError as exc:
        return None, {}, [SpecProblem("", None, f"not valid YAML: {exc}")]
    except RecursionError:
        # PyYAML composes recursively; absurd nesting must be an error, not a crash.
        return None, {}, [SpecProblem("", None, "not valid YAML: nested too deeply")]
    finally:
        if loader is not None:
            loader.dispose()
    return data, lines, []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _duplicate_keys(root: yaml.Node) -> list[SpecProblem]:
    # PyYAML silently keeps the last of two equal keys; a spec author almost never means that.
    problems: list[SpecProblem] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: str) -> None:
        if id(node) in seen_nodes:
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG or not isinstance(key, yaml.ScalarNode):
                    continue
                line = key.start_mark.line + 1
                child = f"{path}.{key.value}" if path else key.value
                if key.value in first:
                    problems.append(
                        SpecProblem(
                            child,
                            line,
                            f"duplicate key '{key.value}' (first on line {first[key.value]})",
                        )
                    )
                else:
                    first[key.value] = line
                walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    walk(root, "")
    return problems


def _index_lines(node: yaml.Node, path: str, lines: dict[str, int], seen: set[int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    # Each node is descended once: aliases reuse nodes, and a billion-laughs document must
    # not make this walk exponential. Paths under a repeated alias fall back to the alias line.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                continue
            child = f"{path}.{key.value}" if path else key.value
            # The key's line, not the value's: a block value starts on the line below.
            lines[child] = key.start_mark.line + 1
            _index_lines(value, child, lines, seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index_lines(item, f"{path}[{i}]", lines, seen)


_PARENT_RE = re.compile(r"(?:\.[^.\[\]]*|\[\d+\])$")


# --------------------------------------------------------------------------- validation


def _describe(value: object) -> str:
    """What a YAML value is, in words, for "found ..." messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number with a fraction ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"


def _is_http_url(url: str) -> bool:
    # Participants are redirected here, so only absolute web URLs (never javascript: etc.).
    if re.search(r"\s", url):
        return False
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _suggest(word: str, choices: list[str] | tuple[str, ...]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


class _Checker:
    """Walks the parsed data, collecting problems and building the normalised spec."""

    def __init__(self, lines: dict[str, int]) -> None:
        self.lines = lines
        self.problems: list[SpecProblem] = []

    # -- reporting

    def line(self, path: str) -> int | None:
        # A missing field has no line of its own: use the nearest enclosing one that exists.
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            parent = _PARENT_RE.sub("", path)
            path = "" if parent == path else parent

    def add(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(path, self.line(path), message))

    # -- generic fields

    def mapping(self, value: object, path: str, what: str = "a mapping") -> dict | Any:
        if isinstance(value, dict):
            return value
        self.add(path, f"must be {what}, found {_describe(value)}")
        return _INVALID

    def known_keys(self, mapping: dict, path: str, allowed: tuple[str, ...]) -> None:
        for key in mapping:
            if key not in allowed:
                name = str(key)
                self.add(_join(path, name), f"unknown field '{name}'{_suggest(name, allowed)}")

    def string(
        self,
        m: dict,
        key: str,
        path: str,
        *,
        default: str | None = None,
        allow_empty: bool = False,
        max_len: int | None = None,
    ) -> str | Any:
        """A string field; ``default`` None means required. Values are stripped."""
        p = _join(path, key)
        value = m.get(key)
        if value is None and default is not None:
            return default
        if value is None and key not in m:
            self.add(p, f"required field '{key}' is missing")
            return _INVALID
        return self.text(value, p, allow_empty=allow_empty, max_len=max_len)

    def text(
        self, value: object, path: str, *, allow_empty: bool = False, max_len: int | None = None
    ) -> str | Any:
        if not isinstance(value, str):
            hint = ""
            if isinstance(value, bool | int | float):
                # YAML reads yes/no/on/off and bare numbers as non-text: quoting fixes that.
                hint = "; put it in quotes if it is meant as text"
            self.add(path, f"must be a string, found {_describe(value)}{hint}")
            return _INVALID
        value = value.strip()
        if not value and not allow_empty:
            self.add(path, "must not be empty")
            return _INVALID
        if max_len is not None and len(value) > max_len:
            self.add(path, f"must be at most {max_len} characters long (found {len(value)})")
            return _INVALID
        return value

    def matching(self, value: str, path: str, pattern: re.Pattern, what: str) -> str | Any:
        if value is _INVALID:
            return _INVALID
        if not pattern.fullmatch(value):
            self.add(path, f"must be {what}, found {value!r}")
            return _INVALID
        return value

    def integer(
        self,
        m: dict,
        key: str,
        path: str,
        *,
        minimum: int,
        maximum: int,
        default: int | None = None,
    ) -> int | Any:
        """An integer field; ``default`` None means required."""
        p = _join(path, key)
        value = m.get(key)
        if value is None and default is not None:
            return default
        if value is None and key not in m:
            self.add(p, f"required field '{key}' is missing")
            return _INVALID
        return self.int_value(value, p, minimum=minimum, maximum=maximum)

    def int_value(self, value: object, path: str, *, minimum: int, maximum: int) -> int | Any:
        if maximum >= MAX_POSITIVE_INT:
            expected = f"an integer of at least {minimum}"
        else:
            expected = f"an integer between {minimum} and {maximum}"
        # bool is a subclass of int in Python, but `true` is never a meaningful count.
        if not isinstance(value, int) or isinstance(value, bool):
            hint = ""
            if isinstance(value, str) and value.strip().lstrip("-").isdigit():
                hint = "; remove the quotes"
            self.add(path, f"must be {expected}, found {_describe(value)}{hint}")
            return _INVALID
        if not minimum <= value <= maximum:
            if value > maximum and maximum >= MAX_POSITIVE_INT:
                expected = f"an integer of at most {maximum}"  # past what the database stores
            self.add(path, f"must be {expected}, found {value}")
            return _INVALID
        return value

    def boolean(self, m: dict, key: str, path: str, *, default: bool) -> bool | Any:
        p = _join(path, key)
        value = m.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.add(p, f"must be true or false, found {_describe(value)}")
            return _INVALID
        return value

    def sequence(self, value: object, path: str, *, min_items: int, what: str) -> list | Any:
        if not isinstance(value, list):
            self.add(path, f"must be a list of {what}, found {_describe(value)}")
            return _INVALID
        if len(value) < min_items:
            noun = what.rstrip("s") if min_items == 1 else what
            self.add(path, f"must contain at least {min_items} {noun}")
            return _INVALID
        return value

    # -- the spec

    def unstorable(self, value: object, path: str) -> None:
        """Report every string, key or value, that cannot be stored (a NUL, say)."""
        if isinstance(value, str):
            if reason := unstorable_character(value):
                self.add(path, reason)
        elif isinstance(value, dict):
            for key, item in value.items():
                child = _join(path, str(key))
                if isinstance(key, str) and (reason := unstorable_character(key)):
                    self.add(child, f"the field name {reason}")
                self.unstorable(item, child)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                self.unstorable(item, f"{path}[{i}]")

    def spec(self, data: object) -> dict:
        root = self.mapping(data, "", "a mapping of fields (like 'title: ...')")
        if root is _INVALID:
            return {}
        # Checked once for the whole tree, so no field's checker can forget it.
        self.unstorable(root, "")
        self.known_keys(root, "", TOP_LEVEL_KEYS)
        out: dict[str, Any] = {}
        slug = self.string(root, "slug", "", max_len=MAX_SLUG)
        out["slug"] = self.matching(
            slug,
            "slug",
            SLUG_RE,
            "a lowercase slug of letters a-z, digits and hyphens (like 'refusal-perception')",
        )
        out["title"] = self.string(root, "title", "", max_len=MAX_TITLE)
        out["description"] = self.string(root, "description", "", default="", allow_empty=True)
        out["consent"] = self.string(root, "consent", "")
        out["instructions"] = self.string(root, "instructions", "")
        positive = {"minimum": 1, "maximum": MAX_POSITIVE_INT}
        out["target_participants"] = self.integer(root, "target_participants", "", **positive)
        out["items_per_participant"] = self.integer(root, "items_per_participant", "", **positive)
        out["time_limit_minutes"] = self.integer(
            root, "time_limit_minutes", "", default=DEFAULT_TIME_LIMIT_MINUTES, **positive
        )
        out["completion"] = self.completion(root)
        out["recruitment_params"] = self.recruitment_params(root)
        out["anonymous_links"] = self.boolean(root, "anonymous_links", "", default=False)
        out["retention_days"] = self.integer(
            root,
            "retention_days",
            "",
            minimum=1,
            maximum=MAX_RETENTION_DAYS,
            default=DEFAULT_RETENTION_DAYS,
        )
        out["topic_choice"] = self.boolean(root, "topic_choice", "", default=False)
        out["seed"] = self.integer(root, "seed", "", minimum=0, maximum=MAX_SEED, default=0)
        out["factors"] = self.factors(root)
        out["response_rule"] = self.response_rule(root, out["factors"])
        keys_seen: dict[str, str] = {}
        out["questions"] = self.questions(root, keys_seen)
        out["attention_checks"] = self.attention_checks(
            root, keys_seen, out["items_per_participant"]
        )
        out["blocks"] = self.blocks(root, keys_seen)
        out["analysis"] = self.analysis(root, out["questions"])
        out["quality"] = self.quality(root, out["attention_checks"], out["completion"])
        # Kept only when given, so a round trip adds nothing; null means "no stimuli file".
        if root.get("stimuli") is not None:
            out["stimuli"] = self.string(root, "stimuli", "")
        if not self.problems:
            self.design_problems(out)
        return out

    def analysis(self, root: dict, questions: list | Any) -> dict | Any:
        """How results are computed: reference and baseline types, composite scores."""
        value = root.get("analysis")
        if value is None:
            value = {}
        m = self.mapping(value, "analysis", "a mapping (reference_level, baseline_level, ...)")
        if m is _INVALID:
            return _INVALID
        self.known_keys(m, "analysis", ANALYSIS_KEYS)
        out: dict[str, Any] = {}
        for key, default in (
            ("reference_level", DEFAULT_REFERENCE_LEVEL),
            ("baseline_level", DEFAULT_BASELINE_LEVEL),
        ):
            level = self.string(m, key, "analysis", default=default)
            if level is not _INVALID and level not in RESPONSE_TYPES:
                self.add(
                    f"analysis.{key}",
                    f"must be a response type, found {level!r}{_suggest(level, RESPONSE_TYPES)}",
                )
                level = _INVALID
            out[key] = level
        if out["reference_level"] == out["baseline_level"] is not _INVALID:
            self.add("analysis.baseline_level", "must differ from analysis.reference_level")
        known = (
            [q["key"] for q in questions if q is not _INVALID and q["key"] is not _INVALID]
            if questions is not _INVALID
            else []
        )
        out["composites"] = self.composites(m, known)
        return out

    def quality(self, root: dict, checks: list | Any, completion: dict | Any) -> dict | Any:
        """Quality-screening rules: each a mapping with ``enabled`` and its threshold."""
        value = root.get("quality")
        if value is None:
            value = {}
        m = self.mapping(value, "quality", "a mapping of rules (attention_checks, speeders, ...)")
        if m is _INVALID:
            return _INVALID
        self.known_keys(m, "quality", QUALITY_KEYS)
        rules: dict[str, Any] = {}
        for name, keys in QUALITY_RULE_KEYS.items():
            path = f"quality.{name}"
            raw = m.get(name)
            rule = self.mapping({} if raw is None else raw, path, "a mapping (enabled: true, ...)")
            if rule is _INVALID:
                rules[name] = _INVALID
                continue
            self.known_keys(rule, path, keys)
            rules[name] = self.quality_rule(name, rule, path)
        self.quality_consistency(rules, checks, completion)
        return rules

    def quality_rule(self, name: str, rule: dict, path: str) -> dict:
        out: dict[str, Any] = {"enabled": self.boolean(rule, "enabled", path, default=False)}
        big = {"maximum": MAX_POSITIVE_INT}
        if name == "attention_checks":
            out["min_failed"] = self.integer(
                rule, "min_failed", path, minimum=1, default=DEFAULT_MIN_FAILED, **big
            )
        elif name == "speeders":
            out["min_seconds"] = self.integer(
                rule, "min_seconds", path, minimum=0, default=0, **big
            )
            out["min_fraction_of_median"] = self.fraction(
                rule, "min_fraction_of_median", path, default=DEFAULT_MIN_FRACTION_OF_MEDIAN
            )
            if (
                out["enabled"] is True
                and out["min_seconds"] == 0
                and out["min_fraction_of_median"] == 0
            ):
                self.add(
                    path,
                    "an enabled speeders rule needs min_seconds or min_fraction_of_median "
                    "above 0 (both are 0, so it could never flag anyone)",
                )
        elif name == "straight_lining":
            out["min_items"] = self.integer(
                rule, "min_items", path, minimum=2, default=DEFAULT_STRAIGHT_LINING_ITEMS, **big
            )
        elif name == "blank_items":
            out["max_blank"] = self.integer(
                rule, "max_blank", path, minimum=0, default=DEFAULT_MAX_BLANK, **big
            )
        elif name == "screen_out":
            enabled = out["enabled"] is True
            out["code"] = self.string(
                rule,
                "code",
                path,
                default=None if enabled else "",
                allow_empty=not enabled,
                max_len=MAX_CODE,
            )
            url = self.string(rule, "url", path, default="", allow_empty=True, max_len=MAX_URL)
            if url not in ("", _INVALID) and not _is_http_url(url):
                self.add(f"{path}.url", f"must be an http:// or https:// URL, found {url!r}")
                url = _INVALID
            out["url"] = url
        return out

    def fraction(self, m: dict, key: str, path: str, *, default: float) -> float | Any:
        """A number from 0 up to (not including) 1, integer or decimal."""
        value = m.get(key)
        if value is None:
            return default
        p = f"{path}.{key}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = "; remove the quotes" if isinstance(value, str) else ""
            self.add(p, f"must be a number from 0 to below 1, found {_describe(value)}{hint}")
            return _INVALID
        if not (math.isfinite(value) and 0 <= value < 1):
            self.add(p, f"must be a number from 0 to below 1 (like 0.3), found {value}")
            return _INVALID
        return value

    def quality_consistency(self, rules: dict, checks: list | Any, completion: dict | Any) -> None:
        """Rules that depend on each other or on the attention checks of the spec."""
        attention, screen_out = rules.get("attention_checks"), rules.get("screen_out")
        n_checks = None if checks is _INVALID else len(checks)
        if attention not in (None, _INVALID) and attention["enabled"] is True:
            if n_checks == 0:
                self.add(
                    "quality.attention_checks",
                    "the attention-check rule is enabled but the study has no attention "
                    "checks (attention_checks: ...)",
                )
            elif n_checks is not None and attention["min_failed"] not in (_INVALID,):
                if attention["min_failed"] > n_checks:
                    self.add(
                        "quality.attention_checks.min_failed",
                        f"must be at most the number of attention checks ({n_checks}), "
                        f"found {attention['min_failed']}",
                    )
        if screen_out in (None, _INVALID) or screen_out["enabled"] is not True:
            return
        if attention in (None, _INVALID) or attention["enabled"] is not True:
            self.add(
                "quality.screen_out",
                "screen-out ends a participant at the attention-check threshold: enable "
                "quality.attention_checks too (its min_failed is the threshold)",
            )
        code = screen_out["code"]
        if (
            completion not in (None, _INVALID)
            and code not in ("", _INVALID)
            and code == completion.get("code")
        ):
            self.add(
                "quality.screen_out.code",
                "must differ from the completion code, or a screened-out participant would "
                "be paid as if they had completed",
            )

    def composites(self, m: dict, question_keys: list[str]) -> list | Any:
        value = m.get("composites")
        if value is None:  # absent or null: no composites
            return []
        items = self.sequence(value, "analysis.composites", min_items=0, what="composites")
        if items is _INVALID:
            return _INVALID
        out = []
        names: set[str] = set()
        for i, item in enumerate(items):
            path = f"analysis.composites[{i}]"
            c = self.mapping(item, path, "a composite (a mapping with name and items)")
            if c is _INVALID:
                out.append(_INVALID)
                continue
            self.known_keys(c, path, COMPOSITE_KEYS)
            name = self.matching(
                self.string(c, "name", path, max_len=MAX_NAME),
                f"{path}.name",
                IDENTIFIER_RE,
                "a lowercase identifier (letters a-z, digits and '_', starting with a letter)",
            )
            if name is not _INVALID and (name in names or name in question_keys):
                self.add(
                    f"{path}.name", f"name '{name}' is already used by a question or composite"
                )
                name = _INVALID
            names.add(name)
            parts = self.sequence(c.get("items"), f"{path}.items", min_items=1, what="items")
            if parts is not _INVALID:
                for j, key in enumerate(parts):
                    if key not in question_keys:
                        self.add(
                            f"{path}.items[{j}]",
                            f"must be a question key, found {key!r}"
                            f"{_suggest(str(key), question_keys)}",
                        )
                        parts = _INVALID
                        break
            out.append({"name": name, "items": parts})
        return out

    def completion(self, root: dict) -> dict | Any:
        if "completion" not in root:
            self.add("completion", "required field 'completion' is missing (a mapping with 'code')")
            return _INVALID
        m = self.mapping(root["completion"], "completion")
        if m is _INVALID:
            return _INVALID
        self.known_keys(m, "completion", COMPLETION_KEYS)
        code = self.string(m, "code", "completion", max_len=MAX_CODE)
        url = self.string(m, "url", "completion", default="", allow_empty=True, max_len=MAX_URL)
        if url not in ("", _INVALID) and not _is_http_url(url):
            self.add("completion.url", f"must be an http:// or https:// URL, found {url!r}")
            url = _INVALID
        return {"code": code, "url": url}

    def recruitment_params(self, root: dict) -> dict | Any:
        value = root.get("recruitment_params")
        if value is None:
            return dict(DEFAULT_RECRUITMENT_PARAMS)
        m = self.mapping(value, "recruitment_params")
        if m is _INVALID:
            return _INVALID
        self.known_keys(m, "recruitment_params", RECRUITMENT_KEYS)
        out = {}
        first: dict[str, str] = {}
        for key in RECRUITMENT_KEYS:
            name = self.string(
                m, key, "recruitment_params", default=DEFAULT_RECRUITMENT_PARAMS[key], max_len=64
            )
            path = f"recruitment_params.{key}"
            name = self.matching(
                name, path, URL_PARAM_RE, "a URL parameter name (letters, digits, underscores)"
            )
            if name is not _INVALID and name in first:
                self.add(path, f"'{name}' is already used for '{first[name]}'")
            elif name is not _INVALID:
                first[name] = key
            out[key] = name
        return out

    def factors(self, root: dict) -> list | Any:
        if "factors" not in root:
            self.add("factors", "required field 'factors' is missing (a list of factors)")
            return _INVALID
        items = self.sequence(root["factors"], "factors", min_items=1, what="factors")
        if items is _INVALID:
            return _INVALID
        out = []
        names: dict[str, str] = {}
        for i, item in enumerate(items):
            path = f"factors[{i}]"
            m = self.mapping(item, path, "a factor (a mapping with name, levels, assignment)")
            if m is _INVALID:
                out.append(_INVALID)
                continue
            self.known_keys(m, path, FACTOR_KEYS)
            name = self.matching(
                self.string(m, "name", path, max_len=MAX_NAME),
                f"{path}.name",
                IDENTIFIER_RE,
                "a lowercase identifier (letters a-z, digits, underscores; starting with a letter)",
            )
            if name is not _INVALID:
                if name in RESERVED_FACTOR_NAMES:
                    self.add(
                        f"{path}.name",
                        f"'{name}' is a reserved name: the data export already has a column "
                        f"'{name}' ({LONG_FORMAT_DESCRIPTIONS[name]}); choose another name "
                        f"(of the export's columns only {' and '.join(sorted(FACTOR_COLUMNS))} "
                        "may be factors)",
                    )
                    name = _INVALID
                elif name in names:
                    self.add(f"{path}.name", f"factor '{name}' is already defined at {names[name]}")
                    name = _INVALID
                else:
                    names[name] = path
            levels = self.levels(m, path, name)
            assignment = self.string(m, "assignment", path)
            if assignment not in (_INVALID, "between", "within"):
                self.add(
                    f"{path}.assignment",
                    f"must be 'between' or 'within', found {assignment!r}"
                    + _suggest(assignment, ("between", "within")),
                )
                assignment = _INVALID
            out.append({"name": name, "levels": levels, "assignment": assignment})
        return out

    def distinct_texts(
        self,
        m: dict,
        key: str,
        path: str,
        *,
        min_items: int,
        noun: str,
        max_len: int,
        missing: str = "",
    ) -> list | Any:
        """A required list of distinct non-empty strings (factor levels, answer options)."""
        p = f"{path}.{key}"
        if key not in m:
            self.add(p, f"required field '{key}' is missing{missing}")
            return _INVALID
        items = self.sequence(m[key], p, min_items=min_items, what=key)
        if items is _INVALID:
            return _INVALID
        out: list[str] = []
        for j, raw in enumerate(items):
            text = self.text(raw, f"{p}[{j}]", max_len=max_len)
            if text is _INVALID:
                return _INVALID
            if text in out:
                self.add(f"{p}[{j}]", f"{noun} '{text}' is listed twice")
                return _INVALID
            out.append(text)
        return out

    def levels(self, m: dict, path: str, factor: str | Any) -> list | Any:
        p = f"{path}.levels"
        out = self.distinct_texts(m, "levels", path, min_items=1, noun="level", max_len=MAX_NAME)
        if out is _INVALID:
            return _INVALID
        if factor == RESPONSE_TYPE_FACTOR:
            for j, level in enumerate(out):
                if level not in RESPONSE_TYPES:
                    self.add(
                        f"{p}[{j}]",
                        f"'{level}' is not a response type{_suggest(level, RESPONSE_TYPES)} "
                        f"(the levels of '{RESPONSE_TYPE_FACTOR}' must be among: "
                        f"{', '.join(RESPONSE_TYPES)})",
                    )
                    return _INVALID
        if factor == MOTIVATION_FACTOR:
            for j, level in enumerate(out):
                if level not in MOTIVATION_LEVELS:
                    self.add(
                        f"{p}[{j}]",
                        f"'{level}' is not a motivation level; use "
                        f"{' or '.join(repr(v) for v in MOTIVATION_LEVELS)} "
                        "(the stimuli file has a scenario column for each)",
                    )
                    return _INVALID
        return out

    def response_rule(self, root: dict, factors: list | Any) -> list | Any:
        value = root.get("response_rule")
        items = (
            [] if value is None else self.sequence(value, "response_rule", min_items=0, what="rows")
        )
        if items is _INVALID:
            return _INVALID
        known: dict[str, list[str]] | None = None
        if factors is not _INVALID and all(
            f is not _INVALID and f["name"] is not _INVALID and f["levels"] is not _INVALID
            for f in factors
        ):
            known = {f["name"]: f["levels"] for f in factors}
        if not items and known is not None and RESPONSE_TYPE_FACTOR not in known:
            self.add(
                "response_rule",
                "the response rule is empty; add rows (when: ..., show: ...), or add a factor "
                f"named '{RESPONSE_TYPE_FACTOR}' whose level is the response type shown",
            )
            return _INVALID
        out = []
        for i, item in enumerate(items):
            path = f"response_rule[{i}]"
            m = self.mapping(item, path, "a rule row (a mapping with when and show)")
            if m is _INVALID:
                out.append(_INVALID)
                continue
            self.known_keys(m, path, RULE_KEYS)
            when = self.when(m, path, known)
            show = self.show(m, path, known)
            out.append({"when": when, "show": show})
        return out

    def when(self, m: dict, path: str, known: dict[str, list[str]] | None) -> dict | Any:
        p = f"{path}.when"
        value = m.get("when")
        if value is None:
            return {}  # no condition: the row matches every item
        when = self.mapping(value, p, "a mapping of factor: level")
        if when is _INVALID:
            return _INVALID
        out: dict[str, str] = {}
        for factor, raw_level in when.items():
            fp = _join(p, str(factor))
            level = self.text(raw_level, fp)
            if level is _INVALID:
                out = _INVALID
                continue
            if known is not None:
                if factor not in known:
                    self.add(
                        fp,
                        f"unknown factor '{factor}'{_suggest(str(factor), list(known))} "
                        f"(factors: {', '.join(known)})",
                    )
                    out = _INVALID
                    continue
                if level not in known[factor]:
                    self.add(
                        fp,
                        f"'{level}' is not a level of factor '{factor}'"
                        f"{_suggest(level, known[factor])} (levels: {', '.join(known[factor])})",
                    )
                    out = _INVALID
                    continue
            if out is not _INVALID:
                out[str(factor)] = level
        return out

    def show(self, m: dict, path: str, known: dict[str, list[str]] | None) -> str | Any:
        show = self.string(m, "show", path)
        p = f"{path}.show"
        if show is _INVALID:
            return _INVALID
        if show.startswith("$"):
            factor = show[1:]
            if known is None:
                return show
            if factor not in known:
                self.add(
                    p,
                    f"'{show}' names no factor{_suggest(factor, list(known))} "
                    f"(factors: {', '.join(known)})",
                )
                return _INVALID
            bad = [lv for lv in known[factor] if lv not in RESPONSE_TYPES]
            if bad:
                self.add(
                    p,
                    f"'{show}' shows the level of factor '{factor}', but its level(s) "
                    f"{', '.join(repr(b) for b in bad)} are not response types "
                    f"({', '.join(RESPONSE_TYPES)})",
                )
                return _INVALID
            return show
        if show not in RESPONSE_TYPES:
            self.add(
                p,
                f"'{show}' is not a response type{_suggest(show, RESPONSE_TYPES)} "
                f"(use one of {', '.join(RESPONSE_TYPES)}, or '$factor' for a factor's level)",
            )
            return _INVALID
        return show

    def item_key(self, m: dict, path: str, keys_seen: dict[str, str]) -> str | Any:
        key = self.matching(
            self.string(m, "key", path, max_len=MAX_NAME),
            f"{path}.key",
            QUESTION_KEY_RE,
            "a lowercase key (letters a-z, digits, '_' or '-'; starting with a letter)",
        )
        if key is _INVALID:
            return _INVALID
        if key in keys_seen:
            self.add(f"{path}.key", f"key '{key}' is already used by {keys_seen[key]}")
            return _INVALID
        keys_seen[key] = path
        return key

    def scale(self, m: dict, path: str) -> dict | Any:
        p = f"{path}.scale"
        if "scale" not in m:
            self.add(p, "required field 'scale' is missing (a mapping with points and anchors)")
            return _INVALID
        s = self.mapping(m["scale"], p, "a scale (a mapping with points and anchors)")
        if s is _INVALID:
            return _INVALID
        self.known_keys(s, p, SCALE_KEYS)
        points = self.integer(s, "points", p, minimum=MIN_POINTS, maximum=MAX_POINTS)
        raw = s.get("anchors")
        anchors: dict[int, str] | Any = {}
        if raw is not None:
            raw = self.mapping(raw, f"{p}.anchors", "a mapping of scale point: label")
            anchors = _INVALID if raw is _INVALID else self.anchors(raw, f"{p}.anchors", points)
        return {"points": points, "anchors": anchors}

    def anchors(self, raw: dict, path: str, points: int | Any) -> dict | Any:
        out: dict[int, str] = {}
        ok = True
        for key, label in raw.items():
            ap = f"{path}.{key}"
            point: int | None = None
            # JSON object keys are always strings, so "1" is as good as 1.
            if isinstance(key, int) and not isinstance(key, bool):
                point = key
            elif isinstance(key, str) and key.strip().isdigit():
                point = int(key.strip())
            if point is None:
                self.add(
                    ap,
                    f"an anchor's key must be a scale point (an integer), found {_describe(key)}",
                )
                ok = False
                continue
            if points is not _INVALID and not 1 <= point <= points:
                self.add(ap, f"anchor {point} is outside the scale (points 1 to {points})")
                ok = False
                continue
            if point in out:
                self.add(ap, f"anchor {point} is given twice")
                ok = False
                continue
            text = self.text(label, ap, max_len=MAX_LABEL)
            if text is _INVALID:
                ok = False
                continue
            out[point] = text
        return dict(sorted(out.items())) if ok else _INVALID

    def questions(self, root: dict, keys_seen: dict[str, str]) -> list | Any:
        if "questions" not in root:
            self.add("questions", "required field 'questions' is missing (a list of questions)")
            return _INVALID
        items = self.sequence(root["questions"], "questions", min_items=1, what="questions")
        if items is _INVALID:
            return _INVALID
        out = []
        for i, item in enumerate(items):
            path = f"questions[{i}]"
            m = self.mapping(item, path, "a question (a mapping with key, text, scale)")
            if m is _INVALID:
                out.append(_INVALID)
                continue
            if "type" in m:
                # Item questions are rated under every item on one scale; other types are
                # asked once, in a block.
                self.add(
                    f"{path}.type",
                    "unknown field 'type': questions under each item are Likert; put other "
                    "question types in a questionnaire block (blocks: ...)",
                )
            self.known_keys(m, path, (*QUESTION_KEYS, "type"))
            out.append(
                {
                    "key": self.item_key(m, path, keys_seen),
                    "construct": self.string(
                        m, "construct", path, default="", allow_empty=True, max_len=MAX_NAME
                    ),
                    "text": self.string(m, "text", path),
                    "scale": self.scale(m, path),
                    "reverse_coded": self.boolean(m, "reverse_coded", path, default=False),
                    "required": self.boolean(m, "required", path, default=True),
                }
            )
        return out

    def attention_checks(
        self, root: dict, keys_seen: dict[str, str], items_per_participant: int | Any
    ) -> list | Any:
        value = root.get("attention_checks")
        if value is None:
            return []
        items = self.sequence(value, "attention_checks", min_items=0, what="attention checks")
        if items is _INVALID:
            return _INVALID
        last = MAX_POSITIVE_INT if items_per_participant is _INVALID else items_per_participant
        out = []
        for i, item in enumerate(items):
            path = f"attention_checks[{i}]"
            m = self.mapping(
                item, path, "an attention check (a mapping with key, text, scale, ...)"
            )
            if m is _INVALID:
                out.append(_INVALID)
                continue
            self.known_keys(m, path, ATTENTION_KEYS)
            key = self.item_key(m, path, keys_seen)
            text = self.string(m, "text", path)
            scale = self.scale(m, path)
            points = MAX_POSITIVE_INT if scale is _INVALID else scale["points"]
            correct = self.integer(
                m,
                "correct",
                path,
                minimum=1,
                maximum=MAX_POSITIVE_INT if points is _INVALID else points,
            )
            after_item = self.integer(m, "after_item", path, minimum=0, maximum=last)
            out.append(
                {
                    "key": key,
                    "text": text,
                    "scale": scale,
                    "correct": correct,
                    "after_item": after_item,
                }
            )
        return out

    def blocks(self, root: dict, keys_seen: dict[str, str]) -> list | Any:
        """Questionnaire blocks: shown once per participant, before or after the items."""
        value = root.get("blocks")
        if value is None:
            return []
        items = self.sequence(value, "blocks", min_items=0, what="blocks")
        if items is _INVALID:
            return _INVALID
        out = []
        block_keys: dict[str, str] = {}
        for i, item in enumerate(items):
            path = f"blocks[{i}]"
            m = self.mapping(
                item, path, "a block (a mapping with key, title, placement, questions)"
            )
            if m is _INVALID:
                out.append(_INVALID)
                continue
            self.known_keys(m, path, BLOCK_KEYS)
            key = self.matching(
                self.string(m, "key", path, max_len=MAX_NAME),
                f"{path}.key",
                IDENTIFIER_RE,
                "a lowercase identifier (letters a-z, digits, underscores; starting with a letter)",
            )
            if key is not _INVALID:
                if key in block_keys:
                    self.add(
                        f"{path}.key", f"block '{key}' is already defined at {block_keys[key]}"
                    )
                    key = _INVALID
                else:
                    block_keys[key] = path
            title = self.string(m, "title", path, max_len=MAX_TITLE)
            intro = self.string(m, "intro", path, default="", allow_empty=True)
            placement = self.string(m, "placement", path)
            if placement not in (_INVALID, *PLACEMENTS):
                self.add(
                    f"{path}.placement",
                    f"must be 'before' or 'after' (the rated items), found {placement!r}"
                    + _suggest(placement, PLACEMENTS),
                )
                placement = _INVALID
            questions: list | Any = _INVALID
            if "questions" not in m:
                self.add(f"{path}.questions", "required field 'questions' is missing")
            else:
                qs = self.sequence(
                    m["questions"], f"{path}.questions", min_items=1, what="questions"
                )
                if qs is not _INVALID:
                    questions = [
                        self.block_question(q, f"{path}.questions[{j}]", keys_seen)
                        for j, q in enumerate(qs)
                    ]
            out.append(
                {
                    "key": key,
                    "title": title,
                    "intro": intro,
                    "placement": placement,
                    "questions": questions,
                }
            )
        return out

    def block_question(self, item: object, path: str, keys_seen: dict[str, str]) -> dict | Any:
        m = self.mapping(item, path, "a question (a mapping with key, type, text, ...)")
        if m is _INVALID:
            return _INVALID
        kind = self.string(m, "type", path, default=LIKERT)
        if kind is not _INVALID and kind not in QUESTION_TYPES:
            self.add(
                f"{path}.type",
                f"'{kind}' is not a question type{_suggest(kind, QUESTION_TYPES)} "
                f"(types: {', '.join(QUESTION_TYPES)})",
            )
            kind = _INVALID
        # Fields of another type are errors, named as such (not just "unknown field").
        for name in m:
            if name in _FIELD_TYPES and kind is not _INVALID and kind not in _FIELD_TYPES[name]:
                owners = " and ".join(_FIELD_TYPES[name])
                self.add(f"{path}.{name}", f"{name} is only for {owners} questions")
        self.known_keys(m, path, ALL_BLOCK_QUESTION_KEYS)
        out: dict[str, Any] = {
            "key": self.item_key(m, path, keys_seen),
            "type": kind,
            "text": self.string(m, "text", path),
            "required": self.boolean(m, "required", path, default=True),
        }
        if kind == LIKERT:
            out["scale"] = self.scale(m, path)
        elif kind in CHOICE_TYPES:
            out["options"] = self.options(m, path)
        elif kind == FREE_TEXT:
            out["max_length"] = self.integer(
                m,
                "max_length",
                path,
                minimum=MIN_MAX_LENGTH,
                maximum=MAX_MAX_LENGTH,
                default=DEFAULT_MAX_LENGTH,
            )
        elif kind == NUMBER:
            low = self.bound(m, "min", path)
            high = self.bound(m, "max", path)
            if low not in (None, _INVALID) and high not in (None, _INVALID) and low > high:
                self.add(f"{path}.max", f"must be at least min ({low}), found {high}")
                high = _INVALID
            out["min"], out["max"] = low, high
        return out

    def options(self, m: dict, path: str) -> list | Any:
        return self.distinct_texts(
            m,
            "options",
            path,
            min_items=2,
            noun="option",
            max_len=MAX_LABEL,
            missing=" (a list of at least 2 answers)",
        )

    def bound(self, m: dict, key: str, path: str) -> int | float | None | Any:
        """An optional number (integer or decimal) bound of a number question."""
        value = m.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = ""
            if isinstance(value, str):
                hint = "; remove the quotes"
            self.add(f"{path}.{key}", f"must be a number, found {_describe(value)}{hint}")
            return _INVALID
        if not math.isfinite(value) or abs(value) > 1e15:
            self.add(f"{path}.{key}", f"must be a finite number of at most 1e15, found {value}")
            return _INVALID
        return value

    def design_problems(self, spec: dict) -> None:
        design = design_from_spec(StudySpec.from_dict(spec))
        for message in check_design(design, RESPONSE_TYPES):
            self.add(_design_problem_path(message), message)


def _design_problem_path(message: str) -> str:
    # check_design reports plain messages; attach each to the spec key it is most about.
    lowered = message.lower()
    if lowered.startswith(("factor ", "the factors ")):
        return "factors"
    if "attention check" in lowered:
        return "attention_checks"
    if lowered.startswith("items_per_participant"):
        return "items_per_participant"
    return "response_rule"
