"""Reads of human coding: who may see which task, progress, the codes and their agreement."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from annotation.coding import agreement
from annotation.coding.agreement import VerificationOutcome
from annotation.coding.models import CodingAssignment, CodingItem, CodingMember, CodingTask
from annotation.coding.services import NATURAL_FRAMINGS
from modellab.classifiers.labels import (
    DISPLAY,
    FIVE_TO_THREE,
    FIVE_WAY,
    MATERIAL_SCHEMES,
    THREE_WAY,
    THREE_WAY_LABELS,
    UNPARSED,
    labels_of,
)
from studies import access
from studies.models import GenerationItem, LanguageModel, Study


def _signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def is_coder_only(user) -> bool:
    """An account made to code and nothing else (the ``coder`` group), not a superuser."""
    return access.is_coder_only(user)


def may_run_tasks(user) -> bool:
    """Whether the user may create and read coding tasks: any signed-in researcher."""
    return _signed_in(user) and not is_coder_only(user)


def researcher_tasks(user) -> QuerySet[CodingTask]:
    """The coding tasks the user owns (all of them for a superuser), with item counts."""
    if not may_run_tasks(user):
        return CodingTask.objects.none()
    tasks = CodingTask.objects.all() if user.is_superuser else CodingTask.objects.filter(owner=user)
    return tasks.annotate(
        n_items=Count("items", distinct=True),
        n_codes=Count(
            "assignments", filter=Q(assignments__answered_at__isnull=False), distinct=True
        ),
    ).select_related("study")


def task_for_researcher(user, pk: int) -> CodingTask:
    """The task if the user owns it (or is a superuser); 404 otherwise, like any other page."""
    task = researcher_tasks(user).filter(pk=pk).first()
    if task is None:
        raise Http404("No such coding task.")
    return task


def coder_tasks(user) -> list[dict]:
    """The tasks the user is invited to code, each with how many items they have coded."""
    if not _signed_in(user):
        return []
    tasks = (
        CodingTask.objects.filter(members__user=user)
        .annotate(
            n_items=Count("items", distinct=True),
            mine=Count(
                "assignments",
                filter=Q(assignments__coder=user, assignments__answered_at__isnull=False),
                distinct=True,
            ),
        )
        .order_by("-created_at")
    )
    return [{"task": t, "items": t.n_items, "coded": t.mine} for t in tasks]


def task_for_coder(user, pk: int) -> CodingTask:
    """The task if the user is invited to code it; 404 otherwise."""
    if not _signed_in(user):
        raise Http404("No such coding task.")
    task = CodingTask.objects.filter(pk=pk, members__user=user).first()
    if task is None:
        raise Http404("No such coding task.")
    return task


def coded_by(task: CodingTask, coder) -> int:
    return CodingAssignment.objects.filter(
        task=task, coder=coder, answered_at__isnull=False
    ).count()


def members(task: CodingTask) -> list[dict]:
    """Invited coders with their number of codes."""
    counts = dict(
        CodingAssignment.objects.filter(task=task, answered_at__isnull=False)
        .values_list("coder_id")
        .annotate(n=Count("pk"))
    )
    return [
        {"member": m, "username": m.user.get_username(), "codes": counts.get(m.user_id, 0)}
        for m in CodingMember.objects.filter(task=task).select_related("user")
    ]


@dataclass(frozen=True)
class Progress:
    items: int
    overlap: int
    codes: int
    complete_items: int
    live_claims: int

    @property
    def target(self) -> int:
        return self.items * self.overlap

    @property
    def percent(self) -> int:
        return round(100 * self.codes / self.target) if self.target else 0


def progress(task: CodingTask) -> Progress:
    cutoff = timezone.now() - timedelta(minutes=task.claim_minutes)
    rows = CodingAssignment.objects.filter(task=task, released_at__isnull=True)
    per_item = (
        rows.filter(answered_at__isnull=False)
        .values("item_id")
        .annotate(n=Count("pk"))
        .filter(n__gte=task.overlap)
    )
    return Progress(
        items=task.items.count(),
        overlap=task.overlap,
        codes=rows.filter(answered_at__isnull=False).count(),
        complete_items=per_item.count(),
        live_claims=rows.filter(answered_at__isnull=True, claimed_at__gt=cutoff).count(),
    )


def codes(task: CodingTask) -> dict[int, dict[str, str]]:
    """Every answered code: coding item id → {coder username → label}."""
    result: dict[int, dict[str, str]] = {
        pk: {} for pk in CodingItem.objects.filter(task=task).values_list("pk", flat=True)
    }
    for item_id, username, label in (
        CodingAssignment.objects.filter(task=task, answered_at__isnull=False)
        .order_by("item_id", "coder__username")
        .values_list("item_id", "coder__username", "label")
    ):
        result[item_id][username] = label
    return result


CSV_COLUMNS = [
    "task_id",
    "item_position",
    "generation_item_id",
    "model",
    "framing",
    "query_id",
    "category",
    "source_key",
    "context_text",
    "coder",
    "label",
    "claimed_at",
    "answered_at",
]


def codes_csv(task: CodingTask) -> str:
    """Every answered code of the task, one row per (item, coder)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    rows = (
        CodingAssignment.objects.filter(task=task, answered_at__isnull=False)
        .select_related("item", "coder")
        .order_by("item__position", "coder__username")
    )
    for a in rows:
        writer.writerow(
            [
                task.pk,
                a.item.position,
                a.item.generation_item_id or "",
                a.item.model_name,
                a.item.framing,
                a.item.query_key,
                a.item.category,
                a.item.source_key,
                a.item.context_text,
                a.coder.get_username(),
                a.label,
                a.claimed_at.isoformat(),
                a.answered_at.isoformat(),
            ]
        )
    return buffer.getvalue()


# --- verification of study material ------------------------------------------------------


def is_verification(task: CodingTask) -> bool:
    """A task that verifies generated study material (intent, harmfulness), not responses."""
    return task.scheme in MATERIAL_SCHEMES


def _answered_labels(task: CodingTask) -> dict[int, list[tuple[str, str]]]:
    """Coding item id → [(coder username, label)] of its answered codes, in answer order."""
    result: dict[int, list[tuple[str, str]]] = {}
    for item_id, username, label in (
        CodingAssignment.objects.filter(task=task, answered_at__isnull=False)
        .order_by("answered_at", "pk")
        .values_list("item_id", "coder__username", "label")
    ):
        result.setdefault(item_id, []).append((username, label))
    return result


def verification_outcomes(task: CodingTask) -> dict[str, VerificationOutcome]:
    """Each item's outcome keyed by its ``source_key`` (items without a key are left out).

    ``labels`` in the order the codes were given; ``complete`` when the item has the task's k
    answered codes; ``majority`` the unique most frequent label, else None with ``tie`` True
    (the researcher decides). See agreement.verification_outcome.
    """
    answered = _answered_labels(task)
    return {
        key: agreement.verification_outcome(
            (label for _, label in answered.get(pk, [])), overlap=task.overlap
        )
        for pk, key in CodingItem.objects.filter(task=task)
        .exclude(source_key="")
        .order_by("position")
        .values_list("pk", "source_key")
    }


def outcome_rows(task: CodingTask) -> list[dict]:
    """The task page's outcome table: each item in order with its codes and outcome."""
    answered = _answered_labels(task)
    rows = []
    for item in CodingItem.objects.filter(task=task).order_by("position"):
        given = answered.get(item.pk, [])
        outcome = agreement.verification_outcome(
            (label for _, label in given), overlap=task.overlap
        )
        rows.append(
            {
                "item": item,
                "codes": [(coder, DISPLAY.get(label, label)) for coder, label in given],
                "outcome": outcome,
                "majority_name": DISPLAY.get(outcome.majority or "", outcome.majority or ""),
            }
        )
    return rows


# --- agreement ---------------------------------------------------------------------------


def _classifier_scheme(labels: set[str]) -> str:
    """A classifier run's scheme from its labels: three-way when every label is a three-way
    one (``full_compliance`` alone fits both; it maps to itself either way)."""
    return THREE_WAY if labels <= {*THREE_WAY_LABELS, UNPARSED} else FIVE_WAY


def automatic_labels(generation_item_ids: list[int]) -> dict[str, dict[int, str]]:
    """Each automatic classification run's labels of these responses (the model lab's runs)."""
    # Imported here: the model lab's selectors read annotation tables too (rewards).
    from modellab.behaviour.selectors import labels_for_items

    return labels_for_items(generation_item_ids)


def classifier_comparisons(
    task: CodingTask,
    task_codes: Mapping[int, Mapping[str, str]],
    runs: Mapping[str, Mapping[int, str]],
) -> list[agreement.ClassifierAgreement]:
    """Each classifier run against the coders' majority label on the task's items.

    A five-way task compared with a three-way classifier maps every code through
    FIVE_TO_THREE before the majority is taken; a five-way classifier on a three-way task has
    its labels mapped the same way. Items without a majority (a tie) are left out and counted.
    """
    source = dict(
        CodingItem.objects.filter(task=task, generation_item__isnull=False).values_list(
            "pk", "generation_item_id"
        )
    )
    result = []
    for name, labels_by_item in sorted(runs.items()):
        predictions = {pk: labels_by_item[g] for pk, g in source.items() if g in labels_by_item}
        if not predictions:
            continue
        run_scheme = _classifier_scheme(set(predictions.values()))
        if task.scheme == run_scheme:
            compared, code_map, prediction_map = labels_of(task.scheme), None, None
        elif task.scheme == FIVE_WAY:
            compared, code_map, prediction_map = THREE_WAY_LABELS, FIVE_TO_THREE, None
        else:
            compared, code_map, prediction_map = THREE_WAY_LABELS, None, FIVE_TO_THREE
        result.append(
            agreement.classifier_agreement(
                name,
                task_codes,
                predictions,
                labels=compared,
                code_map=code_map,
                prediction_map=prediction_map,
            )
        )
    return result


def agreement_report(task: CodingTask, runs: Mapping[str, Mapping[int, str]] | None = None):
    """Coder-vs-coder agreement and each classifier's agreement with the coders' majority.

    ``runs`` (name → {generation item id → label}) defaults to the automatic runs the model
    behaviour part stored for these responses.
    """
    task_codes = codes(task)
    labels = labels_of(task.scheme)
    coders = agreement.coder_agreement(task_codes, k=task.overlap, labels=labels)
    if task.scheme in MATERIAL_SCHEMES:
        # Study material has no responses, so no response classifier labelled it.
        runs = {}
    elif runs is None:
        ids = list(
            CodingItem.objects.filter(task=task, generation_item__isnull=False).values_list(
                "generation_item_id", flat=True
            )
        )
        runs = automatic_labels(ids)
    return {
        "coders": coders,
        "classifiers": classifier_comparisons(task, task_codes, runs),
        "display": DISPLAY,
    }


# --- the create form's choices -----------------------------------------------------------


def studies_with_natural_responses(user) -> QuerySet[Study]:
    """Studies the user may view that have finished natural responses."""
    return (
        access.studies_for(user, access.Action.VIEW)
        .filter(
            generation_items__response_type="",
            generation_items__framing__in=NATURAL_FRAMINGS,
            generation_items__status=GenerationItem.Status.DONE,
        )
        .distinct()
        .order_by("title")
    )


def models_with_natural_responses(studies: QuerySet[Study]) -> QuerySet[LanguageModel]:
    return (
        LanguageModel.objects.filter(
            items__study__in=studies,
            items__response_type="",
            items__status=GenerationItem.Status.DONE,
        )
        .distinct()
        .order_by("name")
    )
