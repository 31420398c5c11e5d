"""Reading a study's response texts for review: the table's rows, filters and provenance.

The writes (approve, reject, edit, approve several) are in studies.generation.services, next
to the code that creates generated texts; pages and the API both call them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import django_filters
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from studies.domain import RESPONSE_TYPE_LABELS, RESPONSE_TYPES
from studies.models import ResponseVariant, Study
from studies.services import EDITABLE_STATUSES

#: The model filter's value for texts no model wrote (imported from a file or typed in).
NO_MODEL = "-"

_TYPE_ORDER = Case(
    *(When(response_type=t, then=Value(i)) for i, t in enumerate(RESPONSE_TYPES)),
    default=Value(len(RESPONSE_TYPES)),
    output_field=IntegerField(),
)


def review_queryset(study: Study) -> QuerySet[ResponseVariant]:
    """Every response text of the study, by query, then in the domain's order of types."""
    return (
        ResponseVariant.objects.filter(query__study=study)
        .select_related("query")
        .annotate(type_order=_TYPE_ORDER)
        .order_by("query__query_id", "type_order", "model_name", "sample", "pk")
    )


def texts_editable(study: Study) -> bool:
    """Whether the study's texts may still change (before launch; afterwards they are fixed)."""
    return study.status in EDITABLE_STATUSES


class ReviewFilter(django_filters.FilterSet):
    """Filters of the review table; the choices come from the queryset it is given.

    Works with ``DjangoFilterBackend`` as is (``filterset_class = ReviewFilter``) when the
    view's queryset is one study's ``review_queryset``.
    """

    q = django_filters.CharFilter(method="filter_search", label="Search text or query id")
    category = django_filters.ChoiceFilter(
        empty_label="any", field_name="query__category", label="Category", choices=[]
    )
    response_type = django_filters.ChoiceFilter(
        empty_label="any",
        label="Response type",
        choices=[(t, RESPONSE_TYPE_LABELS[t]) for t in RESPONSE_TYPES],
    )
    status = django_filters.ChoiceFilter(
        empty_label="any",
        field_name="review_status",
        label="Review status",
        choices=ResponseVariant.ReviewStatus,
    )
    model = django_filters.ChoiceFilter(
        empty_label="any", method="filter_model", label="Model", choices=[]
    )
    source = django_filters.ChoiceFilter(
        empty_label="any", label="Source", choices=ResponseVariant.Source
    )

    class Meta:
        model = ResponseVariant
        fields = ["q", "category", "response_type", "status", "model", "source"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        base = self.queryset if self.queryset is not None else ResponseVariant.objects.none()
        base = base.order_by()
        categories = sorted(set(base.values_list("query__category", flat=True)))
        models = sorted(set(base.values_list("model_name", flat=True)))
        self._set_choices("category", [(c, c) for c in categories])
        self._set_choices(
            "model", [(name or NO_MODEL, name or "none (imported or written)") for name in models]
        )

    def _set_choices(self, name: str, choices: list[tuple[str, str]]) -> None:
        filter_ = self.filters[name]
        filter_.extra["choices"] = choices
        # A filter builds its form field once and keeps it (``_field``), and the copy each
        # FilterSet makes keeps it too: once anything (the API schema, an earlier request)
        # has built the class's field, its stale choices would make a valid value "invalid"
        # and the filter silently ignored. Drop it so the field is built with these choices.
        vars(filter_).pop("_field", None)

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        value = value.strip()
        if not value:
            return queryset
        return queryset.filter(
            Q(text__icontains=value)
            | Q(query__query_id__icontains=value)
            | Q(query__text__icontains=value)
        )

    def filter_model(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.filter(model_name="" if value == NO_MODEL else value)


@dataclass(frozen=True)
class Edit:
    """One earlier version of a text, as edit_variant keeps it."""

    at: datetime | None
    by: str | None
    previous_text: str


@dataclass(frozen=True)
class Provenance:
    """Where a text came from, read from the variant's provenance for display."""

    source: str
    model: str
    backend: str
    job: int | None
    params: dict
    prompt: list
    generated_at: datetime | None
    latency_ms: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    edits: list[Edit]

    @property
    def settings(self) -> list[tuple[str, object]]:
        """The generation parameters worth a glance (the backend settings stay in ``params``)."""
        keys = ("temperature", "max_tokens", "seed", "mode")
        return [(k, self.params[k]) for k in keys if self.params.get(k) is not None]


def _when(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def provenance(variant: ResponseVariant) -> Provenance:
    """The variant's provenance, tolerant of what older or imported rows lack."""
    data = variant.provenance or {}
    job = data.get("job")
    return Provenance(
        source=variant.get_source_display(),
        model=variant.model_name or data.get("model", ""),
        backend=data.get("backend", ""),
        job=job if isinstance(job, int) else None,
        params=data.get("params") if isinstance(data.get("params"), dict) else {},
        prompt=data.get("prompt") if isinstance(data.get("prompt"), list) else [],
        generated_at=_when(data.get("generated_at")),
        latency_ms=data.get("latency_ms"),
        prompt_tokens=data.get("prompt_tokens"),
        completion_tokens=data.get("completion_tokens"),
        edits=[
            Edit(at=_when(e.get("at")), by=e.get("by"), previous_text=e.get("previous_text", ""))
            for e in data.get("edits", [])
            if isinstance(e, dict)
        ],
    )


@dataclass(frozen=True)
class ReviewRow:
    variant: ResponseVariant
    provenance: Provenance

    @property
    def type_label(self) -> str:
        return RESPONSE_TYPE_LABELS.get(self.variant.response_type, self.variant.response_type)


def review_rows(variants: list[ResponseVariant]) -> list[ReviewRow]:
    """The rows of one page of the review table."""
    return [ReviewRow(variant=v, provenance=provenance(v)) for v in variants]


@dataclass(frozen=True)
class TypeColumn:
    """One response type's texts of a query, for the side-by-side view."""

    response_type: str
    label: str
    rows: list[ReviewRow]

    @property
    def approved(self) -> list[ReviewRow]:
        approved = ResponseVariant.ReviewStatus.APPROVED
        return [r for r in self.rows if r.variant.review_status == approved]


def side_by_side(query) -> list[TypeColumn]:
    """A query's texts grouped by response type, in the domain's order (unknown types last)."""
    variants = list(
        ResponseVariant.objects.filter(query=query).order_by(
            "response_type", "model_name", "sample"
        )
    )
    types = list(RESPONSE_TYPES) + sorted({v.response_type for v in variants} - set(RESPONSE_TYPES))
    return [
        TypeColumn(
            response_type=t,
            label=RESPONSE_TYPE_LABELS.get(t, t),
            rows=review_rows([v for v in variants if v.response_type == t]),
        )
        for t in types
    ]
