"""Researcher-side tables: studies, their questions and their stimuli."""

import secrets

from django.conf import settings
from django.db import models


def new_salt() -> str:
    return secrets.token_hex(16)


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        GENERATING = "generating"
        REVIEW = "review"
        LIVE = "live"
        PAUSED = "paused"
        CLOSED = "closed"
        ARCHIVED = "archived"

    slug = models.SlugField(max_length=80, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="StudyMembership", related_name="studies", blank=True
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    consent_md = models.TextField()
    instructions_md = models.TextField()
    target_participants = models.PositiveIntegerField()
    items_per_participant = models.PositiveIntegerField()
    time_limit_minutes = models.PositiveIntegerField()
    completion_code = models.CharField(max_length=64)
    completion_url = models.URLField(max_length=500, blank=True)
    # Names of the recruitment URL parameters: {"participant": ..., "study": ..., "session": ...}
    recruitment_params = models.JSONField(default=dict)
    # Whether the study's link may be opened without a participant id, on purpose (e.g. a
    # classroom run); otherwise an arrival without one is refused.
    anonymous_links = models.BooleanField(default=False)
    topic_choice = models.BooleanField(default=False)
    # Factors, the response rule and attention checks, as validated by studies.spec.
    design = models.JSONField(default=dict)
    seed = models.BigIntegerField(default=0)
    pseudonym_salt = models.CharField(max_length=64, default=new_salt, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    # Slots of the pilot launch; 0 when the study was launched in full straight away.
    pilot_slots = models.PositiveIntegerField(default=0)
    # The study this one was duplicated from (a new version of a live study's design).
    duplicated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates"
    )
    # The spec's quality-screening rules, as validated by studies.spec (empty: none).
    quality = models.JSONField(default=dict, blank=True)
    # Raw recruitment ids are erased this many days after the study closes.
    retention_days = models.PositiveIntegerField(default=90)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "studies"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.slug


class StudyMembership(models.Model):
    """A researcher's role in one study; studies.access decides what each role may do."""

    class Role(models.TextChoices):
        OWNER = "owner"
        EDITOR = "editor"
        VIEWER = "viewer"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "user"]
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}: {self.user} ({self.role})"


class QuestionnaireBlock(models.Model):
    """Questions asked once per participant, before or after the rated items (demographics…)."""

    class Placement(models.TextChoices):
        BEFORE = "before", "before the rated items"
        AFTER = "after", "after the rated items"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="blocks")
    key = models.SlugField(max_length=64)
    title = models.CharField(max_length=200)
    intro_md = models.TextField(blank=True)
    placement = models.CharField(max_length=8, choices=Placement.choices)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["study", "order"]
        constraints = [
            models.UniqueConstraint(fields=["study", "key"], name="block_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}:{self.key}"


class Question(models.Model):
    """A rated item's question (Likert), an attention check when ``correct_value`` is set,
    or a questionnaire block's question of any kind when ``block`` is set."""

    class Kind(models.TextChoices):
        LIKERT = "likert"
        SINGLE_CHOICE = "single_choice", "single choice"
        MULTIPLE_CHOICE = "multiple_choice", "multiple choice"
        FREE_TEXT = "free_text", "free text"
        NUMBER = "number"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="questions")
    block = models.ForeignKey(
        QuestionnaireBlock,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="questions",
    )
    key = models.SlugField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.LIKERT)
    construct = models.CharField(max_length=64, blank=True)
    text = models.TextField()
    # Likert scale points (numbered from 1); null for the other kinds.
    points = models.PositiveSmallIntegerField(null=True, blank=True)
    # Choice kinds: the option labels, in the order shown; answers store the label.
    options = models.JSONField(default=list, blank=True)
    # Free text: the longest answer accepted.
    max_length = models.PositiveIntegerField(null=True, blank=True)
    # Number: the accepted range (either end may be open).
    min_value = models.FloatField(null=True, blank=True)
    max_value = models.FloatField(null=True, blank=True)
    # {"1": "Strongly disagree", "7": "Strongly agree"}: labels for some or all points.
    anchors = models.JSONField(default=dict)
    reverse_coded = models.BooleanField(default=False)
    required = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0)
    is_attention_check = models.BooleanField(default=False)
    correct_value = models.PositiveSmallIntegerField(null=True, blank=True)
    # Attention checks appear after this many stimulus items.
    after_item = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["study", "order"]
        constraints = [
            models.UniqueConstraint(fields=["study", "key"], name="question_key_unique"),
            models.CheckConstraint(
                condition=models.Q(is_attention_check=False)
                | models.Q(correct_value__isnull=False, after_item__isnull=False),
                name="attention_check_has_answer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study.slug}:{self.key}"

    def anchor_for(self, point: int) -> str:
        return self.anchors.get(str(point), "")


class Query(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="queries")
    query_id = models.CharField(max_length=64)
    text = models.TextField()
    category = models.CharField(max_length=64)
    topic = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["study", "query_id"]
        verbose_name_plural = "queries"
        constraints = [
            models.UniqueConstraint(fields=["study", "query_id"], name="query_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.query_id}: {self.text[:60]}"


class Scenario(models.Model):
    """The second-person context ("You are …") read before the query, per motivation level."""

    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="scenarios")
    motivation = models.CharField(max_length=64)
    text = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["query", "motivation"], name="scenario_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.query.query_id}/{self.motivation}"


class ResponseVariant(models.Model):
    """The text shown as the assistant's answer to a query, for one response type."""

    class Source(models.TextChoices):
        WRITTEN = "written"
        IMPORTED = "imported"
        GENERATED = "generated"

    class ReviewStatus(models.TextChoices):
        GENERATED = "generated", "awaiting review"
        APPROVED = "approved"
        REJECTED = "rejected"

    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="variants")
    response_type = models.CharField(max_length=32)
    model_name = models.CharField(max_length=200, blank=True)
    sample = models.PositiveIntegerField(default=0)
    text = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.IMPORTED)
    review_status = models.CharField(
        max_length=16, choices=ReviewStatus.choices, default=ReviewStatus.APPROVED
    )
    provenance = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "response_type", "model_name", "sample"],
                name="variant_natural_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.query.query_id}/{self.response_type}"


class AuditEvent(models.Model):
    """An append-only record of important writes (import, launch, exclusion, export).

    Most rows concern a study; changes to a registered model (where its requests and API key
    go) concern that model and may have no study.
    """

    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    model = models.ForeignKey(
        "LanguageModel",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        subject = self.study_id if self.study_id is not None else f"model {self.model_id}"
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {subject}"


class LanguageModel(models.Model):
    """A registered model: which backend reaches it, with what settings, on which queue."""

    class Backend(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible endpoint"
        TRANSFORMERS = "transformers", "Local transformers weights"

    class Queue(models.TextChoices):
        DEFAULT = "default"
        GPU = "gpu"

    class Kind(models.TextChoices):
        CHAT = "chat", "Chat model"
        # Turns texts into vectors (studies.generation.embeddings); never writes text.
        EMBEDDING = "embedding", "Embedding model"

    name = models.SlugField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHAT)
    backend = models.CharField(max_length=16, choices=Backend.choices)
    # Backend settings (validated by studies.generation.backends); API keys are never stored,
    # only the name of the environment variable that holds one on the worker hosts.
    backend_settings = models.JSONField(default=dict)
    queue = models.CharField(max_length=16, choices=Queue.choices, default=Queue.DEFAULT)
    temperature = models.FloatField(default=0.7)
    max_tokens = models.PositiveIntegerField(default=512)
    seed = models.BigIntegerField(null=True, blank=True)
    # Only the owner (or a superuser) may change a model; others may use it when shared.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="language_models",
    )
    shared = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GenerationJob(models.Model):
    """One request to have a model write a study's responses; fans out into batch tasks."""

    class Kind(models.TextChoices):
        STRATEGY = "strategy", "Strategy responses (the five types)"
        NATURAL = "natural", "Natural responses (no strategy instruction)"

    class Mode(models.TextChoices):
        PER_TYPE = "per_type", "One call per response type"
        STRUCTURED = "structured", "One structured call returning all five"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed", "finished with failures"
        CANCELLED = "cancelled"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="generation_jobs")
    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.STRATEGY)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.PER_TYPE)
    samples = models.PositiveIntegerField(default=1)
    # Per-type instructions used by this job (defaults from studies.generation.prompts).
    instructions = models.JSONField(default=dict, blank=True)
    # The model's generation parameters as they were when the job started.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.pk} {self.study.slug} {self.model.name} {self.kind}"


class GenerationItem(models.Model):
    """One text a model must write; its natural key makes reruns fill only what is missing."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        CANCELLED = "cancelled"

    class Framing(models.TextChoices):
        STRATEGY = "strategy"
        QUERY_ONLY = "query_only"
        BENIGN = "benign"
        MALICIOUS = "malicious"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="generation_items")
    query = models.ForeignKey(Query, on_delete=models.CASCADE, related_name="generation_items")
    model = models.ForeignKey(LanguageModel, on_delete=models.PROTECT, related_name="items")
    # Empty for natural responses: the model chose its own type.
    response_type = models.CharField(max_length=32, blank=True)
    framing = models.CharField(max_length=16, choices=Framing.choices)
    sample = models.PositiveIntegerField(default=0)
    job = models.ForeignKey(
        GenerationJob, on_delete=models.SET_NULL, null=True, related_name="items"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    text = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    prompt = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["query", "model", "response_type", "framing", "sample"],
                name="generation_item_natural_key",
            ),
        ]
        indexes = [models.Index(fields=["job", "status"], name="generation_item_job_idx")]

    def __str__(self) -> str:
        kind = self.response_type or self.framing
        return f"{self.query.query_id}/{kind}/{self.model.name}#{self.sample}"


class AnalysisResult(models.Model):
    """One computed analysis report of a study, versioned by its inputs and code."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="analysis_results")
    # Which participants count: "included" (completed, not excluded; default), "completed"
    # or "all" (studies.domain.INCLUSION_RULES).
    inclusion = models.CharField(max_length=16, default="included")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    report = models.JSONField(default=dict, blank=True)
    inputs_hash = models.CharField(max_length=64, blank=True)
    code_version = models.CharField(max_length=16, blank=True)
    n_ratings = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]
        indexes = [
            models.Index(fields=["study", "inclusion", "status"], name="analysis_latest_idx")
        ]

    def __str__(self) -> str:
        return f"analysis {self.pk} of {self.study.slug} ({self.inclusion}, {self.status})"


class ExportJob(models.Model):
    """One export of a study's data (tables or a replication package), built on a worker."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"
        EXPIRED = "expired"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="export_jobs")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Which tables (ratings, participants, stimuli, trials, block_answers), in which format.
    tables = models.JSONField(default=list)
    format = models.CharField(max_length=16, default="csv")
    # Which participants count: completed, included (completed and not excluded) or all.
    inclusion = models.CharField(max_length=16, default="included")
    include_recruitment_ids = models.BooleanField(default=False)
    package = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveBigIntegerField(default=0)
    rows_done = models.PositiveBigIntegerField(default=0)
    # Relative to settings.EXPORT_ROOT.
    file_path = models.CharField(max_length=500, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["study", "status"], name="export_job_study_idx")]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.study.slug} ({self.status})"


class PowerAnalysis(models.Model):
    """One simulation-based power analysis of a study's planned design."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="power_analyses")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Effect sizes, variance components, participant counts, simulations, alpha, seed.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "power analyses"

    def __str__(self) -> str:
        return f"power analysis {self.pk} of {self.study.slug} ({self.status})"
