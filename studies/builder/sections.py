"""The builder's sections: which spec keys each page edits, and which field a problem is about.

A section reads the study's spec (a plain dict from ``spec_dict``), offers forms for its part,
turns the submitted forms back into spec values, and places every ``SpecProblem.path`` the
validator reports next to the form field it concerns.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django import forms
from django.forms import formset_factory
from django.http import QueryDict

from studies.builder import forms as bf

# Which section page edits each top-level spec key (for links from an error summary).
SECTION_OF_KEY: dict[str, str] = {
    "slug": "metadata",
    "title": "metadata",
    "description": "metadata",
    "target_participants": "metadata",
    "items_per_participant": "metadata",
    "time_limit_minutes": "metadata",
    "topic_choice": "metadata",
    "seed": "metadata",
    "consent": "texts",
    "instructions": "texts",
    "factors": "design",
    "response_rule": "design",
    "questions": "questions",
    "attention_checks": "attention",
    "recruitment_params": "recruitment",
    "anonymous_links": "recruitment",
    "retention_days": "recruitment",
    "completion": "recruitment",
    "analysis": "analysis",
    "quality": "quality",
    "blocks": "blocks",
}

_LIST_PATH_RE = r"(?:\[(\d+)\](?:\.(.+))?)?"


def top_key(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def head(rest: str) -> str:
    """The first name of a path's rest: ``scale.points`` → ``scale``, ``levels[1]`` → ``levels``."""
    return re.split(r"[.\[]", rest or "", maxsplit=1)[0]


def scale_field(rest: str) -> str:
    """Questions keep the scale in two fields: points and anchors."""
    name = head(rest)
    if name == "scale":
        return "anchors" if ".anchors" in rest else "points"
    return name


def add_error(form: forms.Form, field: str | None, message: str) -> None:
    form.add_error(field if field in form.fields else None, message)


class ListPart:
    """A formset editing one list of the spec, remembering which form made which list item."""

    def __init__(
        self,
        *,
        form_class: type[forms.Form],
        prefix: str,
        items: list,
        data: QueryDict | None,
        initial_for: Callable[[dict], dict],
        field_for: Callable[[str], str | None] = head,
        extra: int = 1,
        form_kwargs: dict | None = None,
        item_args: tuple = (),
    ) -> None:
        formset_class = formset_factory(form_class, extra=extra, can_order=True, can_delete=True)
        self.prefix = prefix
        self.field_for = field_for
        self.item_args = item_args
        self.formset = formset_class(
            data,
            initial=[initial_for(item) for item in items],
            prefix=prefix,
            form_kwargs=form_kwargs or {},
        )
        self.index_forms: dict[int, forms.Form] = {}

    def is_valid(self) -> bool:
        return self.formset.is_valid()

    def items(self) -> list[dict]:
        """The list in the submitted order, without deleted rows and untouched blank ones."""
        ordered = self.formset.ordered_forms
        self.index_forms = dict(enumerate(ordered))
        return [form.item(*self.item_args) for form in ordered]

    def place(self, list_path: str, path: str, message: str) -> bool:
        match = re.fullmatch(re.escape(list_path) + _LIST_PATH_RE, path)
        if match is None:
            return False
        if match.group(1) is None:
            # About the list as a whole ("must contain at least 1 question"): above the list.
            self.formset.non_form_errors().append(message)
            return True
        form = self.index_forms.get(int(match.group(1)))
        if form is None:
            return False
        add_error(form, self.field_for(match.group(2) or ""), message)
        return True


# Starting values of a row added with "add another": a bound formset shows submitted data
# only, so a new row would otherwise lose its form's initial values (e.g. a 7-point scale).
NEW_ROW_VALUES: dict[str, dict[str, str]] = {
    "question": {"points": "7", "required": "on"},
    "check": {"points": "7"},
    "bq": {"required": "on"},
}


def with_added_row(data: QueryDict, prefix: str) -> QueryDict:
    """The submitted data with one more blank form in the formset ``prefix`` ("add another")."""
    data = data.copy()
    key = f"{prefix}-TOTAL_FORMS"
    try:
        index = int(data.get(key, "0"))
    except ValueError:
        return data  # a tampered management form: the formset reports it
    data[key] = str(index + 1)
    for field, value in NEW_ROW_VALUES.get(prefix, {}).items():
        data[f"{prefix}-{index}-{field}"] = value
    return data


class Section:
    """One page of the builder; subclasses set the forms, the values and the field mapping."""

    key = ""
    title = ""
    lists: tuple[str, ...] = ()  # formset prefixes offering "add another"

    def __init__(self, spec: dict, data: QueryDict | None = None) -> None:
        self.spec = spec
        self.data = data

    def parts(self) -> list:
        raise NotImplementedError

    def is_valid(self) -> bool:
        # Every part is checked, so one page shows all of its problems at once.
        results = [part.is_valid() for part in self.parts()]
        return all(results)

    def changes(self) -> dict:
        raise NotImplementedError

    def place(self, path: str, message: str) -> bool:
        raise NotImplementedError


class FormSection(Section):
    """A section that is a single form whose fields carry the spec's top-level names."""

    form_class: type[forms.Form] = forms.Form
    paths: dict[str, str] = {}

    def __init__(self, spec: dict, data: QueryDict | None = None) -> None:
        super().__init__(spec, data)
        self.form = self.form_class(data, initial=self.initial())

    def initial(self) -> dict:
        return {name: self.spec.get(name) for name in self.form_class.base_fields}

    def parts(self) -> list:
        return [self.form]

    def changes(self) -> dict:
        return self.form.changes()

    def place(self, path: str, message: str) -> bool:
        field = self.paths.get(path, path)
        if field in self.form.fields:
            self.form.add_error(field, message)
            return True
        return False


class MetadataSection(FormSection):
    key = "metadata"
    title = "Title, size and timing"
    form_class = bf.MetadataForm


class TextsSection(FormSection):
    key = "texts"
    title = "Consent and instructions"
    form_class = bf.TextsForm


class RecruitmentSection(FormSection):
    key = "recruitment"
    title = "Recruitment and completion"
    form_class = bf.RecruitmentForm
    paths = {
        "recruitment_params.participant": "participant",
        "recruitment_params.study": "study",
        "recruitment_params.session": "session",
        "completion.code": "completion_code",
        "completion.url": "completion_url",
    }

    def initial(self) -> dict:
        params = self.spec.get("recruitment_params") or {}
        completion = self.spec.get("completion") or {}
        return {
            **{k: params.get(k, "") for k in ("participant", "study", "session")},
            "anonymous_links": bool(self.spec.get("anonymous_links")),
            "retention_days": self.spec.get("retention_days"),
            "completion_code": completion.get("code", ""),
            "completion_url": completion.get("url", ""),
        }


class AnalysisSection(Section):
    key = "analysis"
    title = "Analysis"
    lists = ("composite",)

    def __init__(self, spec: dict, data: QueryDict | None = None) -> None:
        super().__init__(spec, data)
        analysis = spec.get("analysis") or {}
        self.form = bf.AnalysisForm(
            data,
            initial={
                "reference_level": analysis.get("reference_level"),
                "baseline_level": analysis.get("baseline_level"),
            },
        )
        self.composites = ListPart(
            form_class=bf.CompositeForm,
            prefix="composite",
            items=analysis.get("composites") or [],
            data=data,
            initial_for=bf.CompositeForm.initial_for,
        )
        self.question_keys = [q["key"] for q in spec.get("questions", [])]

    def parts(self) -> list:
        return [self.form, self.composites]

    def changes(self) -> dict:
        return {"analysis": {**self.form.cleaned_data, "composites": self.composites.items()}}

    def place(self, path: str, message: str) -> bool:
        name = path.removeprefix("analysis.")
        if name in self.form.fields:
            self.form.add_error(name, message)
            return True
        return self.composites.place("analysis.composites", path, message)


class QualitySection(FormSection):
    """The quality-screening rules: each on or off, with its threshold."""

    key = "quality"
    title = "Quality screening"
    form_class = bf.QualityForm

    def initial(self) -> dict:
        return bf.QualityForm.initial_for(self.spec.get("quality") or {})

    def place(self, path: str, message: str) -> bool:
        # quality.<rule>.<field> → "<rule>_<field>"; quality.<rule> → its on/off box.
        parts = path.split(".")
        if parts[0] != "quality" or len(parts) < 2:
            return False
        field = bf.quality_field(parts[1], parts[2] if len(parts) > 2 else "enabled")
        add_error(self.form, field, message)
        return True


class DesignSection(Section):
    """Factors and the response rule on one page: changing one often needs the other."""

    key = "design"
    title = "Factors and the response rule"
    lists = ("factor", "rule")

    def __init__(self, spec: dict, data: QueryDict | None = None) -> None:
        super().__init__(spec, data)
        saved = spec.get("factors") or []
        # Changing the within factors often changes how many items fit: both on one page.
        self.size = bf.DesignSizeForm(
            data, initial={"items_per_participant": spec.get("items_per_participant")}
        )
        self.factors = ListPart(
            form_class=bf.FactorForm,
            prefix="factor",
            items=saved,
            data=data,
            initial_for=bf.FactorForm.initial_for,
        )
        if data is None:
            columns = [f["name"] for f in saved]
        else:
            # The rule's columns as they were rendered, so each select keeps its factor.
            columns = [c for c in data.get("rule_columns", "").split(",") if c]
        self.columns = columns
        levels = {f["name"]: f["levels"] for f in saved}
        levels.update(self.submitted_levels())
        self.rule = ListPart(
            form_class=bf.RuleRowForm,
            prefix="rule",
            items=spec.get("response_rule") or [],
            data=data,
            initial_for=lambda row: bf.RuleRowForm.initial_for(row, columns),
            field_for=self.rule_field,
            form_kwargs={"factors": [(c, levels.get(c, [])) for c in columns]},
            item_args=(columns,),
        )

    def submitted_levels(self) -> dict[str, list[str]]:
        if self.data is None or not self.factors.is_valid():
            return {}
        return {f["name"]: f["levels"] for f in self.factors.items() if f["name"]}

    def rule_field(self, rest: str) -> str | None:
        name = head(rest)
        if name == "when" and rest.startswith("when."):
            factor = rest.removeprefix("when.")
            return f"when_{self.columns.index(factor)}" if factor in self.columns else None
        return name

    def parts(self) -> list:
        return [self.size, self.factors, self.rule]

    def changes(self) -> dict:
        return {
            **self.size.changes(),
            "factors": self.factors.items(),
            "response_rule": self.rule.items(),
        }

    def place(self, path: str, message: str) -> bool:
        if path == "items_per_participant":
            self.size.add_error("items_per_participant", message)
            return True
        return self.factors.place("factors", path, message) or self.rule.place(
            "response_rule", path, message
        )

    @classmethod
    def refreshed(cls, spec: dict, data: QueryDict) -> QueryDict:
        """Data whose rule table has a column per submitted factor, keeping chosen levels."""
        section = cls(spec, data)
        if not section.factors.is_valid():
            return data
        new = [f["name"] for f in section.factors.items() if f["name"]]
        old = section.columns
        data = data.copy()
        try:
            rows = int(data.get("rule-TOTAL_FORMS", "0"))
        except ValueError:
            rows = 0
        for r in range(rows):
            values = [data.get(f"rule-{r}-when_{i}", "") for i in range(len(old))]
            for i in range(len(old)):
                data.pop(f"rule-{r}-when_{i}", None)
            for j, name in enumerate(new):
                # Same name, or the same position when that factor was renamed.
                if name in old:
                    data[f"rule-{r}-when_{j}"] = values[old.index(name)]
                elif j < len(old) and old[j] not in new:
                    data[f"rule-{r}-when_{j}"] = values[j]
        data["rule_columns"] = ",".join(new)
        return data


class QuestionsSection(Section):
    key = "questions"
    title = "Questions"
    lists = ("question",)

    def __init__(self, spec: dict, data: QueryDict | None = None) -> None:
        super().__init__(spec, data)
        self.questions = ListPart(
            form_class=bf.QuestionForm,
            prefix="question",
            items=spec.get("questions") or [],
            data=data,
            initial_for=bf.QuestionForm.initial_for,
            field_for=scale_field,
        )

    def parts(self) -> list:
        return [self.questions]

    def changes(self) -> dict:
        return {"questions": self.questions.items()}

    def place(self, path: str, message: str) -> bool:
        return self.questions.place("questions", path, message)


class AttentionSection(Section):
    key = "attention"
    title = "Attention checks"
    lists = ("check",)

    def __init__(self, spec: dict, data: QueryDict | None = None) -> None:
        super().__init__(spec, data)
        self.checks = ListPart(
            form_class=bf.AttentionCheckForm,
            prefix="check",
            items=spec.get("attention_checks") or [],
            data=data,
            initial_for=bf.AttentionCheckForm.initial_for,
            field_for=scale_field,
        )

    def parts(self) -> list:
        return [self.checks]

    def changes(self) -> dict:
        return {"attention_checks": self.checks.items()}

    def place(self, path: str, message: str) -> bool:
        return self.checks.place("attention_checks", path, message)


class BlockSection(Section):
    """One questionnaire block (``index`` None: a new one, added at the end) and its questions."""

    key = "blocks"
    title = "Questionnaire block"
    lists = ("bq",)

    def __init__(
        self, spec: dict, data: QueryDict | None = None, *, index: int | None = None
    ) -> None:
        super().__init__(spec, data)
        blocks = spec.get("blocks") or []
        self.is_new = index is None
        self.index = len(blocks) if index is None else index
        block = {} if index is None else blocks[index]
        self.form = bf.BlockForm(
            data,
            initial={
                "key": block.get("key", ""),
                "title": block.get("title", ""),
                "intro": block.get("intro", ""),
                "placement": block.get("placement", "before"),
            },
        )
        self.questions = ListPart(
            form_class=bf.BlockQuestionForm,
            prefix="bq",
            items=block.get("questions") or [],
            data=data,
            initial_for=bf.BlockQuestionForm.initial_for,
            field_for=scale_field,
            extra=2 if index is None else 1,
        )

    def parts(self) -> list:
        return [self.form, self.questions]

    def changes(self) -> dict:
        blocks = list(self.spec.get("blocks") or [])
        block = {**self.form.cleaned_data, "questions": self.questions.items()}
        if self.is_new:
            blocks.append(block)
        else:
            blocks[self.index] = block
        return {"blocks": blocks}

    def place(self, path: str, message: str) -> bool:
        prefix = f"blocks[{self.index}]"
        if not path.startswith(prefix):
            return False
        rest = path.removeprefix(prefix)
        if rest.startswith(".questions"):
            return self.questions.place(f"{prefix}.questions", path, message)
        add_error(self.form, head(rest.removeprefix(".")), message)
        return True


SECTIONS: dict[str, type[Section]] = {
    section.key: section
    for section in (
        MetadataSection,
        TextsSection,
        DesignSection,
        QuestionsSection,
        AttentionSection,
        RecruitmentSection,
        AnalysisSection,
        QualitySection,
    )
}
