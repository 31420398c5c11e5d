"""Tables of the model lab: reward-model scoring runs and one score per stimulus a participant
could see."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studies.models import LanguageModel, ResponseVariant, Study

__all__ = ["RewardRun", "RewardScore"]


class RewardRun(models.Model):
    """One scorer (a reward model or an LLM judge) scoring every approved response of a study,
    with the query alone and after each scenario; a rerun of the same scorer fills what is
    missing (its natural key: study, model, scorer, judge prompt)."""

    class Scorer(models.TextChoices):
        REWARD_MODEL = "reward_model", "Reward model (sequence classification)"
        LLM_JUDGE = "llm_judge", "LLM judge (−3…+3)"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed", "finished with failures"
        CANCELLED = "cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="reward_runs")
    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="reward_runs")
    scorer = models.CharField(max_length=16, choices=Scorer.choices)
    # The judge's instructions (llm_judge only); empty for a reward model.
    judge_prompt = models.TextField(blank=True)
    # sha256 of judge_prompt, so the natural key is indexable whatever the prompt's length.
    prompt_sha256 = models.CharField(max_length=64, blank=True)
    # The model's settings and the scorer's own as they were when the run last started.
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    # Counts written when the run finishes (the page reads live counts from the scores).
    n_total = models.PositiveIntegerField(default=0)
    n_done = models.PositiveIntegerField(default=0)
    n_failed = models.PositiveIntegerField(default=0)
    n_unparsed = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the run was last (re)started: a run still queued long after is failed by the beat.
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "model", "scorer", "prompt_sha256"], name="reward_run_natural_key"
            ),
        ]

    def __str__(self) -> str:
        return f"reward run {self.pk} {self.study.slug} {self.model.name} ({self.scorer})"


class RewardScore(models.Model):
    """The score of one (query[, scenario], response) a participant could see: an approved
    response variant, framed by the query alone (motivation "") or after one scenario."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        # The judge answered, but never in the required form: raw answer kept, no score.
        UNPARSED = "unparsed"
        # The run was cancelled before this score was taken; a restart takes it again.
        CANCELLED = "cancelled"

    run = models.ForeignKey(RewardRun, on_delete=models.CASCADE, related_name="scores")
    variant = models.ForeignKey(
        ResponseVariant, on_delete=models.CASCADE, related_name="reward_scores"
    )
    # The scenario's motivation level read before the query; "" = the query alone.
    motivation = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    score = models.FloatField(null=True, blank=True)
    raw_answer = models.TextField(blank=True)
    rationale = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # sha256 of the conversation scored: a text edited since is scored again on a rerun.
    input_sha256 = models.CharField(max_length=64, blank=True)
    # The batch a dispatch put this score in: a batch task claims and writes only its own
    # scores, so a batch overtaken by a cancel and a restart stores nothing.
    batch = models.UUIDField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "variant", "motivation"], name="reward_score_natural_key"
            ),
        ]
        indexes = [models.Index(fields=["run", "status"], name="reward_score_run_status_idx")]

    def __str__(self) -> str:
        framing = self.motivation or "query only"
        return f"run {self.run_id} variant {self.variant_id} ({framing}): {self.score}"
