"""Participant-side tables: plan slots, participants, their trials and ratings."""

from django.db import models

from studies.models import Query, Question, ResponseVariant, Study


class Slot(models.Model):
    """One planned participant: a between-participants cell and an ordered list of items."""

    class Status(models.TextChoices):
        FREE = "free"
        CLAIMED = "claimed"
        COMPLETED = "completed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="slots")
    index = models.PositiveIntegerField()
    cell = models.JSONField(default=dict)
    # Created by a pilot launch: its participants are flagged as pilot in the data.
    is_pilot = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.FREE)
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "index"]
        constraints = [
            models.UniqueConstraint(fields=["study", "index"], name="slot_index_unique"),
        ]
        indexes = [models.Index(fields=["study", "status", "index"], name="slot_claim_idx")]

    def __str__(self) -> str:
        return f"{self.study.slug}#{self.index}"


class SlotItem(models.Model):
    class Kind(models.TextChoices):
        STIMULUS = "stimulus"
        ATTENTION = "attention"

    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STIMULUS)
    # Every factor's level for this item, between-participant factors included.
    levels = models.JSONField(default=dict)
    response_type = models.CharField(max_length=32, blank=True)
    motivation = models.CharField(max_length=64, blank=True)
    # Fixed at launch, unless the participant picks a topic from ``category`` first.
    query = models.ForeignKey(Query, null=True, blank=True, on_delete=models.PROTECT)
    category = models.CharField(max_length=64, blank=True)
    attention_check = models.ForeignKey(
        Question, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["slot", "position"]
        constraints = [
            models.UniqueConstraint(fields=["slot", "position"], name="slot_item_position_unique"),
        ]

    def __str__(self) -> str:
        return f"slot {self.slot_id} item {self.position} ({self.kind})"


class Participant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        RETURNED = "returned"
        TIMED_OUT = "timed_out"
        DECLINED = "declined"
        # Ended early by the study's quality screen (failed attention checks).
        SCREENED_OUT = "screened_out"
        # Left of their own accord; their answers are kept out of analysis and exports.
        WITHDRAWN = "withdrawn"

    class Exclusion(models.TextChoices):
        # No researcher decision yet: ``excluded`` follows the quality flags.
        UNDECIDED = "", "undecided"
        EXCLUDED = "excluded"
        KEPT = "kept"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="participants")
    # Keyed hash of the recruitment platform's id, salted per study: never the raw id.
    pseudonym = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    slot = models.ForeignKey(
        Slot, null=True, blank=True, on_delete=models.SET_NULL, related_name="participants"
    )
    # Position of the next page to show, 1-based; beyond the last item means finished.
    position = models.PositiveIntegerField(default=1)
    recruitment = models.JSONField(default=dict, blank=True)
    is_pilot = models.BooleanField(default=False)
    # Keys of the questionnaire blocks this participant has submitted, in order.
    completed_blocks = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    consented_at = models.DateTimeField(null=True, blank=True)
    instructions_read_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(auto_now=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    # Quality screening: what the rules found ([{"rule": ..., "reason": ...}]) and when.
    flags = models.JSONField(default=list, blank=True)
    screened_at = models.DateTimeField(null=True, blank=True)
    # The exclusion decision, beside the status (a completed participant stays completed):
    # ``excluded`` is the effective outcome, the flags' verdict unless a researcher decided.
    excluded = models.BooleanField(default=False)
    exclusion_decision = models.CharField(
        max_length=16, choices=Exclusion.choices, default=Exclusion.UNDECIDED, blank=True
    )
    exclusion_reason = models.TextField(blank=True)
    exclusion_decided_at = models.DateTimeField(null=True, blank=True)
    # Keyed hash of the user agent and the /24 (IPv4) or /48 (IPv6) network: duplicate check.
    device_key = models.CharField(max_length=64, blank=True)
    device_class = models.CharField(max_length=16, blank=True)
    # The recruitment platform's id, encrypted at rest (annotation.recruitment_ids); erased
    # after the study's retention period.
    recruitment_id_encrypted = models.TextField(blank=True)
    recruitment_id_erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "pseudonym"], name="participant_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}:{self.pseudonym[:10]}"


class Trial(models.Model):
    """What one participant saw at one position, and when."""

    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="trials")
    slot_item = models.ForeignKey(SlotItem, on_delete=models.PROTECT, related_name="trials")
    position = models.PositiveIntegerField()
    query = models.ForeignKey(Query, null=True, blank=True, on_delete=models.PROTECT)
    variant = models.ForeignKey(ResponseVariant, null=True, blank=True, on_delete=models.PROTECT)
    shown_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ms_on_page = models.PositiveIntegerField(null=True, blank=True)
    submission_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["participant", "position"]
        constraints = [
            models.UniqueConstraint(fields=["participant", "position"], name="trial_unique"),
        ]

    def __str__(self) -> str:
        return f"participant {self.participant_id} item {self.position}"


class Rating(models.Model):
    participant = models.ForeignKey(Participant, on_delete=models.CASCADE, related_name="ratings")
    trial = models.ForeignKey(Trial, on_delete=models.CASCADE, related_name="ratings")
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="ratings")
    value = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trial", "question"], name="rating_unique"),
        ]

    def __str__(self) -> str:
        return f"trial {self.trial_id} question {self.question_id} = {self.value}"


class BlockAnswer(models.Model):
    """A participant's answer to one questionnaire-block question, stored by its kind."""

    participant = models.ForeignKey(
        Participant, on_delete=models.CASCADE, related_name="block_answers"
    )
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="block_answers")
    # Exactly one of these holds the answer, by the question's kind: likert and number in
    # value_number, single choice and free text in value_text, multiple choice in value_choices.
    value_number = models.FloatField(null=True, blank=True)
    value_text = models.TextField(blank=True)
    value_choices = models.JSONField(default=list, blank=True)
    answered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["participant", "question"], name="block_answer_unique"),
        ]

    def __str__(self) -> str:
        return f"participant {self.participant_id} {self.question_id}"


# ----------------------------------------------------------------------------- human coding
# Coding tasks for human labellers live in annotation/coding/; their tables are this app's.
from annotation.coding.models import *  # noqa: E402, F403
