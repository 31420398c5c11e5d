"""Tables of the false-refusal benchmark: imported prompt sets, runs, and one row per response."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studies.models import LanguageModel

__all__ = ["FalseRefusalItem", "FalseRefusalPrompt", "FalseRefusalRun", "PromptSet"]


class PromptSet(models.Model):
    """Prompts imported from one file (e.g. PHTest), with where they came from."""

    name = models.SlugField(max_length=100)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="prompt_sets"
    )
    # Provenance: the file as it was imported, and how its columns were read.
    source_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    # {"prompt": column, "label": column or "", "category": column or "", "id": column or ""}
    mapping = models.JSONField(default=dict)
    row_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="prompt_set_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class FalseRefusalPrompt(models.Model):
    """One prompt of a set; ``label`` is its group for reporting (PHTest: harmless or
    controversial; "all" when the file has no label column)."""

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.CASCADE, related_name="prompts")
    position = models.PositiveIntegerField()  # order in the file, from 1
    external_id = models.CharField(max_length=200)
    text = models.TextField()
    label = models.CharField(max_length=100)
    category = models.CharField(max_length=200, blank=True)
    line = models.PositiveIntegerField()

    class Meta:
        ordering = ["prompt_set", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["prompt_set", "external_id"], name="false_refusal_prompt_id_per_set"
            ),
            models.UniqueConstraint(
                fields=["prompt_set", "position"], name="false_refusal_prompt_position_per_set"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prompt_set_id}:{self.external_id}"


class FalseRefusalRun(models.Model):
    """Several models answer a prompt set; every answer is then classified (three-way)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed", "finished with failures"
        CANCELLED = "cancelled"

    prompt_set = models.ForeignKey(PromptSet, on_delete=models.PROTECT, related_name="runs")
    language_models = models.ManyToManyField(LanguageModel, related_name="false_refusal_runs")
    classifier = models.CharField(max_length=32)
    judge_model = models.ForeignKey(
        LanguageModel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="false_refusal_judged_runs",
    )
    # The judging prompt used (llm_judge): the project's default unless the researcher edited it.
    judge_prompt = models.TextField(blank=True)
    # Prompts used: all (None), the first N, or N drawn at random with ``seed``.
    limit = models.PositiveIntegerField(null=True, blank=True)
    sample = models.PositiveIntegerField(null=True, blank=True)
    seed = models.BigIntegerField(default=0)
    # Each model's generation parameters at the start (model name → params).
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="false_refusal_runs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"false-refusal run {self.pk}"


class FalseRefusalItem(models.Model):
    """One model's response to one prompt, and its three-way label."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        GENERATED = "generated"  # response stored, not classified yet
        DONE = "done"  # classified (label may be "unparsed")
        FAILED = "failed"  # no response after the last attempt
        CANCELLED = "cancelled"  # the run was cancelled before the model was asked

    run = models.ForeignKey(FalseRefusalRun, on_delete=models.CASCADE, related_name="items")
    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="+")
    prompt = models.ForeignKey(FalseRefusalPrompt, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    request = models.JSONField(default=dict)  # messages and parameters sent
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    label = models.CharField(max_length=32, blank=True)
    rationale = models.TextField(blank=True)
    classifier_raw = models.TextField(blank=True)
    classified_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The batch a dispatch (or the generation batch, for its labels) put this item in: a batch
    # task claims and writes only its own items, so a batch overtaken by a cancel and a resume
    # stores nothing.
    batch = models.UUIDField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "model", "prompt"], name="false_refusal_item_per_run"
            )
        ]
        indexes = [models.Index(fields=["run", "status"], name="false_refusal_item_status_idx")]

    def __str__(self) -> str:
        return f"run {self.run_id} {self.model_id} prompt {self.prompt_id}"
