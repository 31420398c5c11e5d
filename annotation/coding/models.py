"""Tables of human coding: tasks, their items (responses or study material), coders, codes."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studies.models import GenerationItem, Study

__all__ = ["CodingAssignment", "CodingItem", "CodingMember", "CodingTask"]


class CodingTask(models.Model):
    """A set of items that invited coders each label with one category of a scheme: model
    responses (three_way, five_way), or generated study material to verify (intent,
    harmfulness; no study, items made by services.create_verification_task)."""

    class Scheme(models.TextChoices):
        THREE_WAY = "three_way", "Three-way (full compliance, full refusal, partial refusal)"
        FIVE_WAY = "five_way", "Five-way response type"
        INTENT = "intent", "Intent of a request in its scenario (benign, malicious, ambiguous)"
        HARMFULNESS = "harmfulness", "Harmfulness of a prompt (harmless, controversial, harmful)"

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    title = models.CharField(max_length=200)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="coding_tasks"
    )
    # Where the items came from; the items keep their own copy of the texts.
    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="coding_tasks"
    )
    scheme = models.CharField(max_length=16, choices=Scheme.choices)
    # k: how many coders code each item.
    overlap = models.PositiveSmallIntegerField(default=2)
    instructions = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # A claim not answered within this time goes back to the pool.
    claim_minutes = models.PositiveIntegerField(default=30)
    # How the items were chosen: models, framings, sample size and seed.
    source = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"coding task {self.pk}: {self.title}"


class CodingItem(models.Model):
    """One thing to code: a response with the prompt it answered, or a piece of study material
    (a request, with its scenario for intent). Texts are copied, so edits never move codes."""

    task = models.ForeignKey(CodingTask, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    generation_item = models.ForeignKey(
        GenerationItem,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="coding_items",
    )
    model_name = models.CharField(max_length=100, blank=True)
    framing = models.CharField(max_length=16, blank=True)
    query_key = models.CharField(max_length=64, blank=True)
    category = models.CharField(max_length=64, blank=True)
    prompt_text = models.TextField()
    # Empty for study material: there is no response, the prompt itself is judged.
    response_text = models.TextField(blank=True)
    # The scenario an intent item's request is read with, shown above it.
    context_text = models.TextField(blank=True)
    # The caller's own key of a verification item, so a pipeline maps codes back to its rows.
    source_key = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["task", "position"]
        constraints = [
            models.UniqueConstraint(fields=["task", "position"], name="coding_item_position"),
            models.UniqueConstraint(
                fields=["task", "generation_item"],
                condition=models.Q(generation_item__isnull=False),
                name="coding_item_source_once",
            ),
            models.UniqueConstraint(
                fields=["task", "source_key"],
                condition=~models.Q(source_key=""),
                name="coding_item_source_key_once",
            ),
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} item {self.position}"


class CodingMember(models.Model):
    """An account invited to code a task: the coder role is held per task."""

    task = models.ForeignKey(CodingTask, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="coding_memberships"
    )
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    invited_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "invited_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["task", "user"], name="coding_member_once"),
        ]

    def __str__(self) -> str:
        return f"task {self.task_id} coder {self.user_id}"


class CodingAssignment(models.Model):
    """One coder's claim on an item and, once answered, their code.

    Unanswered, it is a claim: live until ``claimed_at`` + the task's claim time; after that
    its coder may still resume it until another coder needs the place, who then marks it
    released (kept, so the item is never offered to its first coder again). There are never
    more than k unreleased rows per item.
    """

    task = models.ForeignKey(CodingTask, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(CodingItem, on_delete=models.CASCADE, related_name="assignments")
    coder = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="coding_assignments"
    )
    claimed_at = models.DateTimeField()
    label = models.CharField(max_length=32, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["item", "claimed_at"]
        constraints = [
            models.UniqueConstraint(fields=["item", "coder"], name="coding_code_once"),
        ]
        indexes = [
            models.Index(fields=["task", "coder", "answered_at"], name="coding_coder_idx"),
        ]

    def __str__(self) -> str:
        return f"item {self.item_id} coder {self.coder_id} {self.label or 'claimed'}"
