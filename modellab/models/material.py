"""Tables of study material written by models: query–scenario sets and pseudo-harmful prompts.

Both generators share one shape: a job runs rounds; each round asks the generator model for
candidates (the prompt sent and the raw answer are kept on the round), candidates are
deduplicated against everything the job has, then checked (targets and a classifier for
pseudo-harmful prompts, an intent judge for query–scenario sets); the best become examples of
the next round. At the end a judge and then people (a coding task) give the final labels.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from studies.models import LanguageModel, Query, Study

__all__ = [
    "PseudoHarmfulCandidate",
    "PseudoHarmfulJob",
    "PseudoHarmfulProbe",
    "PseudoHarmfulRound",
    "QueryScenarioCandidate",
    "QueryScenarioJob",
    "QueryScenarioRound",
]


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"  # rounds of generation and checks
    JUDGING = "judging"  # the final judge labels the kept material
    VERIFYING = "verifying"  # a human verification task is open
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RoundStatus(models.TextChoices):
    GENERATING = "generating"
    CHECKING = "checking"  # candidates stored, checks (targets or intent judge) running
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DuplicateReason(models.TextChoices):
    NONE = "", "not a duplicate"
    EXACT = "exact", "same normalised text"
    NEAR = "near", "near-duplicate text"
    EMBEDDING = "embedding", "embedding similarity"


class MaterialJob(models.Model):
    """What the two generators' jobs share: who, which models, rounds, budget, progress."""

    Status = JobStatus

    name = models.SlugField(max_length=100)
    generator = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="+")
    # The instruction sent to the generator (the project's default unless edited).
    instruction = models.TextField()
    per_round = models.PositiveIntegerField(default=20)  # candidates asked for per round
    rounds = models.PositiveIntegerField(default=3)
    # How many of the best candidates so far go to the next round as examples.
    examples_per_round = models.PositiveIntegerField(default=5)
    # Calls to models (generator, targets, judges counted as the job says) it may make in all.
    budget = models.PositiveIntegerField(default=1000)
    calls_used = models.PositiveIntegerField(default=0)
    # Deduplication: normalised text always; near-duplicates at this similarity (0–1); by
    # embedding cosine similarity when an embedding model is chosen.
    near_duplicate_threshold = models.FloatField(default=0.9)
    embedding_model = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    embedding_threshold = models.FloatField(default=0.92)
    # Human verification: coders per item, and the coding task once created.
    verification_overlap = models.PositiveSmallIntegerField(default=2)
    verification_task = models.ForeignKey(
        "annotation.CodingTask", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Each model's generation parameters at the start, and other settings worth keeping.
    params = models.JSONField(default=dict)
    current_round = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at"]


class MaterialRound(models.Model):
    """One round of one job: the examples given, the request sent, what came back."""

    Status = RoundStatus

    number = models.PositiveIntegerField()  # from 1
    # The examples shown to the generator: [{"text"/fields..., "source": "seed" | candidate pk}]
    examples = models.JSONField(default=list)
    request = models.JSONField(default=list)  # the messages of every generator call
    raw_output = models.JSONField(default=list)  # every answer, as returned
    calls = models.PositiveIntegerField(default=0)  # generator calls made
    problems = models.JSONField(default=list)  # answers or entries that could not be read
    status = models.CharField(
        max_length=16, choices=RoundStatus.choices, default=RoundStatus.GENERATING
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class MaterialCandidate(models.Model):
    """What both kinds of candidate share: where it came from, and whether it repeats another."""

    DuplicateReason = DuplicateReason

    position = models.PositiveIntegerField()  # order of arrival within the job, from 1
    category = models.CharField(max_length=64, blank=True)
    topic = models.CharField(max_length=200, blank=True)
    # The text deduplication compares (casefolded, punctuation and spacing normalised).
    normalised = models.TextField()
    duplicate_reason = models.CharField(
        max_length=16, choices=DuplicateReason.choices, blank=True, default=DuplicateReason.NONE
    )
    similarity = models.FloatField(null=True, blank=True)  # to the candidate it duplicates
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    @property
    def is_duplicate(self) -> bool:
        return bool(self.duplicate_reason)


# --- Pseudo-harmful prompts -----------------------------------------------------------------


class PseudoHarmfulJob(MaterialJob):
    """Prompts that look harmful but are not, kept because target models tend to refuse them."""

    class Refusal(models.TextChoices):
        FULL = "full", "Full refusal only"
        FULL_PARTIAL = "full_partial", "Full or partial refusal"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pseudo_harmful_jobs"
    )
    # Seed material: {"topics": [...], "words": [...], "categories": [...], "examples": [...]}
    seed = models.JSONField(default=dict)
    # Content control: {"length": "short" | "medium" | "long", "style": "..."}
    content = models.JSONField(default=dict, blank=True)
    targets = models.ManyToManyField(LanguageModel, related_name="pseudo_harmful_jobs")
    samples = models.PositiveIntegerField(default=1)  # k responses per target and candidate
    refusal = models.CharField(max_length=16, choices=Refusal.choices, default=Refusal.FULL_PARTIAL)
    # How target responses are labelled (three-way): string_match or llm_judge.
    classifier = models.CharField(max_length=32, default="string_match")
    classifier_model = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    classifier_prompt = models.TextField(blank=True)
    # The harmfulness judge of the kept prompts (harmless / controversial / harmful).
    harm_judge = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    harm_judge_prompt = models.TextField(blank=True)
    # How many of the best-ranked candidates go to the judge at the end (None: every one that a
    # target refused at least once).
    keep = models.PositiveIntegerField(null=True, blank=True)
    # The final set, once verified: a prompt set of the false-refusal benchmark.
    prompt_set = models.OneToOneField(
        "modellab.PromptSet",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="pseudo_harmful_job",
    )

    class Meta(MaterialJob.Meta):
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="pseudo_harmful_job_name")
        ]

    def __str__(self) -> str:
        return f"pseudo-harmful job {self.name}"


class PseudoHarmfulRound(MaterialRound):
    job = models.ForeignKey(PseudoHarmfulJob, on_delete=models.CASCADE, related_name="round_set")

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="pseudo_harmful_round_once")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} round {self.number}"


class PseudoHarmfulCandidate(MaterialCandidate):
    """One prompt the generator wrote, what the targets made of it, and its labels."""

    job = models.ForeignKey(PseudoHarmfulJob, on_delete=models.CASCADE, related_name="candidates")
    round = models.ForeignKey(PseudoHarmfulRound, on_delete=models.CASCADE, related_name="+")
    text = models.TextField()
    words = models.JSONField(default=list, blank=True)  # the harmful-looking words it uses
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Target responses: asked, labelled full / partial refusal, unparsed or failed.
    probes = models.PositiveIntegerField(default=0)
    full_refusals = models.PositiveIntegerField(default=0)
    partial_refusals = models.PositiveIntegerField(default=0)
    unparsed = models.PositiveIntegerField(default=0)
    # Share of labelled responses that count as refusals under the job's setting.
    refusal_share = models.FloatField(null=True, blank=True)
    rank = models.PositiveIntegerField(null=True, blank=True)  # 1 = most refused, within the job
    kept = models.BooleanField(default=False)  # sent to the judge at the end
    judge_label = models.CharField(max_length=32, blank=True)
    judge_rationale = models.TextField(blank=True)
    judge_raw = models.TextField(blank=True)
    human_label = models.CharField(max_length=32, blank=True)  # coders' majority
    final_label = models.CharField(max_length=32, blank=True)
    # Who decided final_label: "coders", "researcher" (a tie, or an override) or "judge".
    final_source = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="pseudo_harmful_position")
        ]
        indexes = [models.Index(fields=["job", "normalised"], name="pseudo_harmful_norm_idx")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.position}: {self.text[:60]}"


class PseudoHarmfulProbe(models.Model):
    """One target model's response (sample i of k) to one candidate, and its three-way label."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        GENERATED = "generated"  # response stored, not labelled yet
        DONE = "done"  # labelled (label may be "unparsed")
        FAILED = "failed"
        CANCELLED = "cancelled"

    candidate = models.ForeignKey(
        PseudoHarmfulCandidate, on_delete=models.CASCADE, related_name="probe_set"
    )
    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="+")
    sample = models.PositiveIntegerField()  # from 1 to the job's k
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    response = models.TextField(blank=True)
    error = models.TextField(blank=True)
    request = models.JSONField(default=dict)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    label = models.CharField(max_length=32, blank=True)
    rationale = models.TextField(blank=True)
    classifier_raw = models.TextField(blank=True)
    batch = models.UUIDField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["candidate", "model", "sample"], name="pseudo_harmful_probe_once"
            )
        ]

    def __str__(self) -> str:
        return f"candidate {self.candidate_id} {self.model_id} #{self.sample}"


# --- Query–scenario sets ----------------------------------------------------------------------


class QueryScenarioJob(MaterialJob):
    """Ambiguous queries, each with a benign and a malicious scenario, checked for intent."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="query_scenario_jobs"
    )
    # [{"name": ..., "definition": ..., "topics": [...]}]
    categories = models.JSONField(default=list)
    # Seed examples: [{"category", "topic", "query", "benign_scenario", "malicious_scenario"}]
    examples = models.JSONField(default=list, blank=True)
    # Writing scenarios for a study's own queries (imported without scenarios) instead of
    # writing new queries: the study, whose queries without scenarios are the material.
    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="query_scenario_jobs"
    )
    intent_judge = models.ForeignKey(
        LanguageModel, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    intent_judge_prompt = models.TextField(blank=True)
    # Where the kept set went: the study its stimuli were added to, once added.
    output_study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta(MaterialJob.Meta):
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="query_scenario_job_name")
        ]

    def __str__(self) -> str:
        return f"query-scenario job {self.name}"


class QueryScenarioRound(MaterialRound):
    job = models.ForeignKey(QueryScenarioJob, on_delete=models.CASCADE, related_name="round_set")

    class Meta:
        ordering = ["job", "number"]
        constraints = [
            models.UniqueConstraint(fields=["job", "number"], name="query_scenario_round_once")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} round {self.number}"


class QueryScenarioCandidate(MaterialCandidate):
    """One query with its two scenarios, the judge's and the coders' reading of each."""

    job = models.ForeignKey(QueryScenarioJob, on_delete=models.CASCADE, related_name="candidates")
    round = models.ForeignKey(QueryScenarioRound, on_delete=models.CASCADE, related_name="+")
    query = models.TextField()
    benign_scenario = models.TextField()
    malicious_scenario = models.TextField()
    # The study query these scenarios were written for (scenarios-only jobs).
    source_query = models.ForeignKey(
        Query, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    duplicate_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The intent judge's reading of the query with each scenario (benign/malicious/ambiguous).
    judge_benign_label = models.CharField(max_length=32, blank=True)
    judge_benign_reasoning = models.TextField(blank=True)
    judge_malicious_label = models.CharField(max_length=32, blank=True)
    judge_malicious_reasoning = models.TextField(blank=True)
    judge_raw = models.JSONField(default=dict, blank=True)
    # The judge read the benign scenario as benign and the malicious one as malicious.
    judge_accepted = models.BooleanField(default=False)
    human_benign_label = models.CharField(max_length=32, blank=True)
    human_malicious_label = models.CharField(max_length=32, blank=True)
    # Final: both readings confirmed (by coders, or the researcher on a tie).
    kept = models.BooleanField(default=False)
    final_source = models.CharField(max_length=16, blank=True)
    query_id = models.CharField(max_length=64, blank=True)  # its id in the stimuli set

    class Meta:
        ordering = ["job", "position"]
        constraints = [
            models.UniqueConstraint(fields=["job", "position"], name="query_scenario_position")
        ]
        indexes = [models.Index(fields=["job", "normalised"], name="query_scenario_norm_idx")]

    def __str__(self) -> str:
        return f"{self.job_id}#{self.position}: {self.query[:60]}"
