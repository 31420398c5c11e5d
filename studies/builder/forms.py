"""Forms of the study builder: one form or formset per spec section, plus create and duplicate.

The forms only turn text boxes into the spec's shapes (lists, anchors, numbers); every rule
about what a valid study is stays in studies.spec, so the builder and spec files agree.
"""

from __future__ import annotations

import re

from django import forms

from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES

ANCHOR_LINE_RE = re.compile(r"\s*(\d+)\s*[:=]\s*(.*?)\s*")
ASSIGNMENTS = (("within", "within participants"), ("between", "between participants"))
RESPONSE_TYPE_CHOICES = [(t, RESPONSE_TYPE_LABELS[t]) for t in RESPONSE_TYPES]
QUESTION_TYPES = (
    ("likert", "Likert scale"),
    ("single_choice", "Single choice"),
    ("multiple_choice", "Multiple choice"),
    ("free_text", "Free text"),
    ("number", "Number"),
)
PLACEMENTS = (("before", "before the rated items"), ("after", "after the rated items"))

STARTING_DESIGNS = (
    (
        "every_type",
        "Every response type within participants (motivation between, one Likert question)",
    ),
    ("seed", "The seed design of the refusal-perception study (without its stimuli)"),
)


# --------------------------------------------------------------------------- text <-> values


def lines(text: str) -> list[str]:
    """Non-empty, stripped lines of a textarea: one list item per line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def anchors_text(anchors: dict) -> str:
    return "\n".join(f"{point}: {label}" for point, label in sorted(anchors.items(), key=_point))


def _point(item: tuple) -> int:
    try:
        return int(item[0])
    except (TypeError, ValueError):
        return 0


def parse_anchors(text: str) -> dict[int, str]:
    """Anchors written one "point: label" per line, e.g. "1: Strongly disagree"."""
    out: dict[int, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        match = ANCHOR_LINE_RE.fullmatch(line)
        if match is None:
            raise forms.ValidationError(
                f"line {number}: write one anchor per line as 'point: label', "
                f"like '1: Strongly disagree' (found {line.strip()!r})"
            )
        point = int(match.group(1))
        if point in out:
            raise forms.ValidationError(f"line {number}: anchor {point} is given twice")
        out[point] = match.group(2)
    return out


def number_text(value: object) -> str:
    return "" if value is None else str(value)


def parse_number(text: str) -> int | float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise forms.ValidationError(f"must be a number, found {text!r}") from None


def keys_text(keys: list[str]) -> str:
    return ", ".join(keys)


def parse_keys(text: str) -> list[str]:
    return [k for k in re.split(r"[\s,]+", text or "") if k]


def textarea(rows: int = 3) -> forms.Textarea:
    return forms.Textarea(attrs={"rows": rows})


class LooseChoiceField(forms.ChoiceField):
    """A select whose submitted value is checked by the spec validator, not by Django.

    The response rule's selects offer the factors' levels; a value left over from a renamed
    level must reach the spec validator, whose message then appears next to the select.
    """

    def valid_value(self, value: str) -> bool:
        return True


# --------------------------------------------------------------------------- create, duplicate


class StartForm(forms.Form):
    title = forms.CharField(max_length=200)
    slug = forms.CharField(
        max_length=80,
        help_text="Lowercase letters, digits and hyphens; it appears in the participants' link.",
    )
    design = forms.ChoiceField(
        label="Starting design",
        choices=STARTING_DESIGNS,
        initial="every_type",
        widget=forms.RadioSelect,
    )


class UploadForm(forms.Form):
    spec_file = forms.FileField(
        label="Spec file (YAML or JSON)",
        help_text="The format import_study reads; a stimuli line in it is ignored here.",
    )
    slug = forms.CharField(
        max_length=80,
        required=False,
        help_text="Optional: use this slug instead of the one in the file.",
    )


class DuplicateForm(forms.Form):
    slug = forms.CharField(max_length=80, label="Slug of the new study")
    title = forms.CharField(max_length=200, required=False, help_text="Leave empty to keep it.")


# --------------------------------------------------------------------------- single forms


class MetadataForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=textarea(3))
    target_participants = forms.IntegerField(min_value=1)
    items_per_participant = forms.IntegerField(
        min_value=1, help_text="A multiple of the number of within-participant cells."
    )
    time_limit_minutes = forms.IntegerField(min_value=1, required=False)
    topic_choice = forms.BooleanField(
        required=False,
        label="Participants choose a topic",
        help_text="Each item's query is the one of the topic the participant picks.",
    )
    seed = forms.IntegerField(
        min_value=0, required=False, help_text="Fixes the plan's randomisation."
    )

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        # An empty optional number means "the spec's default", as in a spec file.
        return {k: v for k, v in data.items() if v is not None}


class DesignSizeForm(forms.Form):
    """Items per participant, also on the design page: it must fit the within cells."""

    items_per_participant = forms.IntegerField(
        min_value=1, help_text="A multiple of the number of within-participant cells."
    )

    def changes(self) -> dict:
        return dict(self.cleaned_data)


class TextsForm(forms.Form):
    consent = forms.CharField(widget=textarea(14), help_text="Markdown.")
    instructions = forms.CharField(widget=textarea(14), help_text="Markdown.")

    def changes(self) -> dict:
        return dict(self.cleaned_data)


class RecruitmentForm(forms.Form):
    participant = forms.CharField(
        label="Participant id parameter", max_length=64, help_text="e.g. PROLIFIC_PID"
    )
    study = forms.CharField(label="Study id parameter", max_length=64, help_text="e.g. STUDY_ID")
    session = forms.CharField(
        label="Session id parameter", max_length=64, help_text="e.g. SESSION_ID"
    )
    anonymous_links = forms.BooleanField(
        required=False,
        label="Anyone with the link may take part",
        help_text=(
            "The link may be opened without a participant id, on purpose (e.g. a classroom "
            "run). Leave it off for a recruitment platform: arrivals without an id are refused."
        ),
    )
    completion_code = forms.CharField(label="Completion code", max_length=64)
    completion_url = forms.CharField(
        label="Completion URL",
        max_length=500,
        required=False,
        help_text="Where participants are sent when they finish (optional).",
    )
    retention_days = forms.IntegerField(
        label="Keep raw recruitment ids for (days after the study closes)",
        required=False,
        help_text=(
            "Owners need them to approve, reject and pay participants; they are erased this "
            "many days after the study closes (default 90)."
        ),
    )

    def changes(self) -> dict:
        d = self.cleaned_data
        changes = {
            "recruitment_params": {k: d[k] for k in ("participant", "study", "session")},
            "anonymous_links": d["anonymous_links"],
            "completion": {"code": d["completion_code"], "url": d["completion_url"]},
        }
        # Empty means the spec's default; the spec loader checks the range and says so here.
        if d.get("retention_days") is not None:
            changes["retention_days"] = d["retention_days"]
        return changes


# The quality section's rules and their thresholds, as (rule, field) → form field name.
QUALITY_THRESHOLDS: dict[str, tuple[str, ...]] = {
    "attention_checks": ("min_failed",),
    "speeders": ("min_seconds", "min_fraction_of_median"),
    "straight_lining": ("min_items",),
    "duplicates": (),
    "blank_items": ("max_blank",),
    "screen_out": ("code", "url"),
}


def quality_field(rule: str, name: str) -> str:
    return f"{rule}_{name}"


class QualityForm(forms.Form):
    """Each quality rule: on or off, and its threshold (checked by the spec validator)."""

    attention_checks_enabled = forms.BooleanField(
        required=False, label="Flag failed attention checks"
    )
    attention_checks_min_failed = forms.IntegerField(
        required=False,
        label="…at this many failed checks or more",
        help_text="At most the number of attention checks. Empty: 1.",
    )
    speeders_enabled = forms.BooleanField(required=False, label="Flag speeders")
    speeders_min_seconds = forms.IntegerField(
        required=False,
        label="…who finish in under this many seconds",
        help_text="Consent to the last page. 0 or empty: this part is off.",
    )
    speeders_min_fraction_of_median = forms.FloatField(
        required=False,
        label="…or in under this fraction of the median time",
        help_text="From 0 to below 1, e.g. 0.3: under 0.3 × the median of the completed "
        "participants. 0: off. Empty: 0.3.",
    )
    straight_lining_enabled = forms.BooleanField(required=False, label="Flag straight-lining")
    straight_lining_min_items = forms.IntegerField(
        required=False,
        label="…one answer to every question of this many consecutive items",
        help_text="At least 2. Empty: 4.",
    )
    duplicates_enabled = forms.BooleanField(
        required=False,
        label="Flag duplicate participants",
        help_text="The same device (a keyed hash of the browser and its network, made on the "
        "server) or the same recruitment session id as an earlier participant.",
    )
    blank_items_enabled = forms.BooleanField(required=False, label="Flag questions left blank")
    blank_items_max_blank = forms.IntegerField(
        required=False,
        label="…when more than this many are left blank",
        help_text="Optional questions under the items and in the blocks. Empty: 3.",
    )
    screen_out_enabled = forms.BooleanField(
        required=False,
        label="Screen out early",
        help_text="End a participant at once when they reach the failed-attention-check "
        "threshold above (which must be on), with a code of its own.",
    )
    screen_out_code = forms.CharField(
        required=False, max_length=64, label="Screen-out code", help_text="Not the completion code."
    )
    screen_out_url = forms.CharField(
        required=False,
        max_length=500,
        label="Screen-out URL",
        help_text="Where screened-out participants are sent (optional).",
    )

    @classmethod
    def initial_for(cls, quality: dict) -> dict:
        initial = {}
        for rule, names in QUALITY_THRESHOLDS.items():
            values = quality.get(rule) or {}
            initial[quality_field(rule, "enabled")] = bool(values.get("enabled"))
            for name in names:
                initial[quality_field(rule, name)] = values.get(name)
        return initial

    def changes(self) -> dict:
        d = self.cleaned_data
        quality: dict[str, dict] = {}
        for rule, names in QUALITY_THRESHOLDS.items():
            values: dict = {"enabled": d[quality_field(rule, "enabled")]}
            for name in names:
                value = d[quality_field(rule, name)]
                # An empty box means the spec's default, as a missing field in a file.
                if value is not None and value != "":
                    values[name] = value.strip() if isinstance(value, str) else value
            quality[rule] = values
        return {"quality": quality}


class AnalysisForm(forms.Form):
    reference_level = forms.ChoiceField(
        choices=RESPONSE_TYPE_CHOICES, help_text="Every effect is relative to this response type."
    )
    baseline_level = forms.ChoiceField(
        choices=RESPONSE_TYPE_CHOICES,
        help_text='"Reduces the gap by X%" compares against this one.',
    )


# --------------------------------------------------------------------------- list items


class FactorForm(forms.Form):
    name = forms.CharField(required=False, max_length=64)
    levels = forms.CharField(required=False, widget=textarea(4), help_text="One level per line.")
    assignment = forms.ChoiceField(choices=ASSIGNMENTS, initial="within")

    def item(self) -> dict:
        d = self.cleaned_data
        return {"name": d["name"], "levels": lines(d["levels"]), "assignment": d["assignment"]}

    @staticmethod
    def initial_for(factor: dict) -> dict:
        return {**factor, "levels": "\n".join(factor["levels"])}


class RuleRowForm(forms.Form):
    """One row of the response rule: a select per factor ("any" or a level) and what to show."""

    def __init__(self, *args, factors: list[tuple[str, list[str]]] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.columns = []
        for i, (name, levels) in enumerate(factors):
            field = f"when_{i}"
            self.fields[field] = LooseChoiceField(
                label=name,
                required=False,
                choices=self._with_current(field, [("", "any"), *((lv, lv) for lv in levels)]),
            )
            self.columns.append(self[field])
        show_choices = [*RESPONSE_TYPE_CHOICES]
        show_choices += [(f"${name}", f"the level of {name}") for name, _ in factors]
        self.fields["show"] = LooseChoiceField(
            choices=self._with_current("show", [("", "—"), *show_choices]), required=False
        )

    def _with_current(self, field: str, choices: list) -> list:
        # Keep a submitted value the choices no longer offer, so the page shows what was sent.
        if self.is_bound:
            value = self.data.get(self.add_prefix(field), "")
            if value and value not in {c for c, _ in choices}:
                choices = [*choices, (value, f"{value} (not a choice any more)")]
        return choices

    def item(self, columns: list[str]) -> dict:
        when = {
            name: self.cleaned_data[f"when_{i}"]
            for i, name in enumerate(columns)
            if self.cleaned_data.get(f"when_{i}")
        }
        row: dict = {"when": when} if when else {}
        row["show"] = self.cleaned_data["show"]
        return row

    @staticmethod
    def initial_for(row: dict, columns: list[str]) -> dict:
        initial = {"show": row.get("show", "")}
        for i, name in enumerate(columns):
            initial[f"when_{i}"] = (row.get("when") or {}).get(name, "")
        return initial


class ScaleFieldsMixin(forms.Form):
    points = forms.IntegerField(required=False, initial=7, help_text="Scale points (2–11).")
    anchors = forms.CharField(
        required=False,
        widget=textarea(4),
        help_text="One “point: label” per line, e.g. “1: Strongly disagree”.",
    )

    def clean_anchors(self) -> dict[int, str]:
        return parse_anchors(self.cleaned_data.get("anchors", ""))

    def scale(self) -> dict:
        return {"points": self.cleaned_data.get("points"), "anchors": self.cleaned_data["anchors"]}


class QuestionForm(ScaleFieldsMixin):
    key = forms.CharField(required=False, max_length=64)
    construct = forms.CharField(required=False, max_length=64)
    text = forms.CharField(required=False, widget=textarea(2))
    reverse_coded = forms.BooleanField(required=False)
    required = forms.BooleanField(required=False, initial=True)

    field_order = ("key", "construct", "text", "points", "anchors", "reverse_coded", "required")

    def item(self) -> dict:
        d = self.cleaned_data
        return {
            "key": d["key"],
            "construct": d["construct"],
            "text": d["text"],
            "scale": self.scale(),
            "reverse_coded": d["reverse_coded"],
            "required": d["required"],
        }

    @staticmethod
    def initial_for(q: dict) -> dict:
        scale = q.get("scale") or {}
        return {
            **q,
            "points": scale.get("points"),
            "anchors": anchors_text(scale.get("anchors") or {}),
        }


class AttentionCheckForm(ScaleFieldsMixin):
    key = forms.CharField(required=False, max_length=64)
    text = forms.CharField(required=False, widget=textarea(2))
    correct = forms.IntegerField(required=False, help_text="The scale point a reader picks.")
    after_item = forms.IntegerField(
        required=False, help_text="Shown after this many rated items (0 = before the first)."
    )

    field_order = ("key", "text", "points", "anchors", "correct", "after_item")

    def item(self) -> dict:
        d = self.cleaned_data
        return {
            "key": d["key"],
            "text": d["text"],
            "scale": self.scale(),
            "correct": d["correct"],
            "after_item": d["after_item"],
        }

    initial_for = staticmethod(QuestionForm.initial_for)


class CompositeForm(forms.Form):
    name = forms.CharField(required=False, max_length=64)
    items = forms.CharField(
        required=False, help_text="Question keys, separated by commas or spaces."
    )

    def item(self) -> dict:
        return {"name": self.cleaned_data["name"], "items": parse_keys(self.cleaned_data["items"])}

    @staticmethod
    def initial_for(c: dict) -> dict:
        return {"name": c["name"], "items": keys_text(c["items"])}


class BlockForm(forms.Form):
    key = forms.CharField(max_length=64, help_text="An identifier like demographics.")
    title = forms.CharField(max_length=200, help_text="The page heading participants see.")
    intro = forms.CharField(required=False, widget=textarea(3), help_text="Markdown, optional.")
    placement = forms.ChoiceField(choices=PLACEMENTS)


class BlockQuestionForm(forms.Form):
    key = forms.CharField(required=False, max_length=64)
    type = forms.ChoiceField(choices=QUESTION_TYPES, initial="single_choice")
    text = forms.CharField(required=False, widget=textarea(2))
    required = forms.BooleanField(required=False, initial=True)
    options = forms.CharField(
        required=False,
        widget=textarea(4),
        help_text="Single and multiple choice: one option per line.",
    )
    max_length = forms.IntegerField(required=False, help_text="Free text: the longest answer.")
    min = forms.CharField(required=False, label="Minimum", help_text="Number: lowest accepted.")
    max = forms.CharField(required=False, label="Maximum", help_text="Number: highest accepted.")
    points = forms.IntegerField(required=False, help_text="Likert: scale points (2–11).")
    anchors = forms.CharField(
        required=False,
        widget=textarea(3),
        help_text="Likert: one “point: label” per line.",
    )

    def clean_min(self) -> int | float | None:
        return parse_number(self.cleaned_data.get("min", ""))

    def clean_max(self) -> int | float | None:
        return parse_number(self.cleaned_data.get("max", ""))

    def clean_anchors(self) -> dict[int, str]:
        return parse_anchors(self.cleaned_data.get("anchors", ""))

    def item(self) -> dict:
        """The question as the spec writes it: only the fields its type uses, unless given."""
        d = self.cleaned_data
        kind = d["type"]
        out: dict = {"key": d["key"], "type": kind, "text": d["text"], "required": d["required"]}
        # A field of another type is passed on when filled in, so the validator can say so.
        if kind in ("single_choice", "multiple_choice") or lines(d["options"]):
            out["options"] = lines(d["options"])
        if d["max_length"] is not None:
            out["max_length"] = d["max_length"]
        for bound in ("min", "max"):
            if d[bound] is not None:
                out[bound] = d[bound]
        if kind == "likert" or d["points"] is not None or d["anchors"]:
            out["scale"] = {"points": d["points"], "anchors": d["anchors"]}
        return out

    @staticmethod
    def initial_for(q: dict) -> dict:
        scale = q.get("scale") or {}
        return {
            "key": q.get("key", ""),
            "type": q.get("type", "likert"),
            "text": q.get("text", ""),
            "required": q.get("required", True),
            "options": "\n".join(q.get("options") or []),
            "max_length": q.get("max_length") if q.get("type") == "free_text" else None,
            "min": number_text(q.get("min")),
            "max": number_text(q.get("max")),
            "points": scale.get("points"),
            "anchors": anchors_text(scale.get("anchors") or {}),
        }
