"""Tables of the model lab: behaviour (classification runs of natural responses, their labels)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studies.models import GenerationItem, LanguageModel, Study

__all__ = ["ClassificationLabel", "ClassificationRun"]


class ClassificationRun(models.Model):
    """One classifier with one set of settings applied to a study's natural responses.

    The settings (classifier, scheme, judge model and its parameters, judge prompt, phrase
    lists) are hashed into ``settings_key``; a study has at most one run per key, so starting
    the same settings again reuses the run and labels only the responses it has not labelled.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="classification_runs")
    classifier = models.CharField(max_length=32)
    scheme = models.CharField(max_length=16)
    judge_model = models.ForeignKey(
        LanguageModel,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="judged_classification_runs",
    )
    judge_prompt = models.TextField(blank=True)
    # The string-match phrase lists, or null for the classifier's defaults.
    phrases = models.JSONField(null=True, blank=True)
    # The models whose natural responses this run labels (grows when a rerun adds one).
    language_models = models.ManyToManyField(LanguageModel, related_name="classification_runs")
    settings_key = models.CharField(max_length=64)
    # Provenance: classifier, scheme, prompt text, phrases, judge model parameters, code version.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    # Written when the run finishes (progress while it runs is counted from its labels).
    n_items = models.PositiveIntegerField(default=0)
    n_labelled = models.PositiveIntegerField(default=0)
    n_unparsed = models.PositiveIntegerField(default=0)
    n_failed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "settings_key"], name="classification_run_settings_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        """How pages, files and the coding agreement tables name the run."""
        judge = f" ({self.judge_model.name})" if self.judge_model_id else ""
        return f"{self.classifier} {self.scheme}{judge} #{self.pk}"


class ClassificationLabel(models.Model):
    """The label one run gave one natural response; one row per (run, response)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    run = models.ForeignKey(ClassificationRun, on_delete=models.CASCADE, related_name="labels")
    item = models.ForeignKey(
        GenerationItem, on_delete=models.CASCADE, related_name="classification_labels"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # A label of the run's scheme, or "unparsed" (the judge's answer could not be read).
    label = models.CharField(max_length=32, blank=True)
    rationale = models.TextField(blank=True)
    raw = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    # The batch a dispatch put this row in: a redelivered batch reclaims only its own rows,
    # and a second dispatch plans only rows no batch holds.
    batch = models.UUIDField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "item"], name="classification_label_unique"),
        ]
        indexes = [
            models.Index(fields=["run", "status"], name="classification_label_run_idx"),
        ]

    def __str__(self) -> str:
        return f"run {self.run_id} item {self.item_id}: {self.label or self.status}"
