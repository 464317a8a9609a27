from __future__ import annotations

import re
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F, Q

from core import crypto
from core.models import Leased


class ProviderConnection(models.Model):
    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI"
        AZURE_OPENAI = "azure_openai", "Azure OpenAI"
        SANDBOX = "sandbox", "Tuneboard sandbox"
        TOGETHER = "together", "Together AI"
        SELF_HOSTED = "self_hosted", "Self-hosted (runs report through the API)"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    base_url = models.URLField(max_length=300, blank=True)
    # Encrypted at rest; never rendered back (only the last four characters are shown).
    api_key_encrypted = models.TextField(blank=True, editable=False)
    api_key_hint = models.CharField(max_length=8, blank=True, editable=False)
    organization = models.CharField(max_length=100, blank=True)
    project = models.CharField(max_length=100, blank=True)
    api_version = models.CharField(max_length=40, blank=True, help_text="Azure OpenAI only.")
    webhook_secret_encrypted = models.TextField(blank=True, editable=False)
    # Notifications when a job on this connection finishes (see jobs/notifications.py).
    notify_emails = models.TextField(
        blank=True, help_text="Addresses to notify when a job finishes, comma- or line-separated."
    )
    slack_webhook_url = models.URLField(
        max_length=500, blank=True, help_text="A Slack-compatible incoming webhook URL."
    )
    enabled = models.BooleanField(default=True)
    archived_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The budget of quick syncs for watched jobs (jobs.watching): a fixed window and how many
    # it has granted, so that open job pages never exceed WATCHED_SYNC_LIMIT per window.
    watch_window_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    watch_window_syncs = models.IntegerField(default=0, editable=False)
    # Guardrails every job launched on (or reported to) this connection starts with:
    # [{"kind": …, "params": {…}, "action": "notify" | "pause" | "cancel"}] (jobs.guardrails).
    guardrail_defaults = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_api_key(self, key: str) -> None:
        self.api_key_encrypted = crypto.encrypt(key) if key else ""
        self.api_key_hint = key[-4:] if len(key) >= 8 else ""

    def get_api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    def set_webhook_secret(self, secret: str) -> None:
        self.webhook_secret_encrypted = crypto.encrypt(secret) if secret else ""

    def get_webhook_secret(self) -> str:
        return crypto.decrypt(self.webhook_secret_encrypted)

    @property
    def masked_key(self) -> str:
        if not self.api_key_encrypted:
            return "not set"
        return f"••••{self.api_key_hint}" if self.api_key_hint else "••••"

    @property
    def usable(self) -> bool:
        return self.enabled and self.archived_at is None and bool(self.api_key_encrypted)

    @property
    def notify_email_list(self) -> list[str]:
        return split_addresses(self.notify_emails)


def split_addresses(text: str) -> list[str]:
    """Addresses from a comma-, semicolon- or line-separated list, in order, without repeats."""
    seen: list[str] = []
    for raw in re.split(r"[,;\s]+", text or ""):
        address = raw.strip()
        if address and address.lower() not in (a.lower() for a in seen):
            seen.append(address)
    return seen


class ProviderFile(models.Model):
    """A dataset file uploaded to a connection, reused by sha256 for later jobs."""

    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.CASCADE, related_name="files"
    )
    sha256 = models.CharField(max_length=64)
    purpose = models.CharField(max_length=30, default="fine-tune")
    provider_file_id = models.CharField(max_length=100)
    bytes = models.BigIntegerField()
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "sha256", "purpose"], name="jobs_providerfile_unique_content"
            )
        ]

    def __str__(self) -> str:
        return self.provider_file_id


class Job(Leased):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending launch"
        LAUNCHING = "launching", "Launching"
        LAUNCH_FAILED = "launch_failed", "Launch failed"
        VALIDATING_FILES = "validating_files", "Validating files"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        LOST = "lost", "Lost at provider"

    TERMINAL = frozenset({"succeeded", "failed", "cancelled", "launch_failed", "lost"})
    PROVIDER_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})

    class Method(models.TextChoices):
        SUPERVISED = "supervised", "Supervised"
        DPO = "dpo", "DPO"

    class Origin(models.TextChoices):
        LAUNCHED = "launched", "Launched from Tuneboard"
        IMPORTED = "imported", "Imported from the provider"
        BUNDLE = "bundle", "Imported from an export bundle"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.PROTECT, related_name="jobs"
    )
    provider_job_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - unknown until created
    # What was asked for.
    name = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    base_model = models.CharField(max_length=300)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.SUPERVISED)
    requested_hyperparameters = models.JSONField(default=dict, blank=True)
    suffix = models.CharField(max_length=64, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    integrations = models.JSONField(default=list, blank=True)
    training_dataset = models.ForeignKey(
        "datasets.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="training_jobs",
    )
    validation_dataset = models.ForeignKey(
        "datasets.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="validation_jobs",
    )
    cloned_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # What the provider reports.
    # Providers add statuses (``awaiting_safety_evaluation``): any word up to this length is
    # stored as it comes, and a status Tuneboard does not know counts as active.
    status = models.CharField(
        max_length=64, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    model = models.CharField(
        max_length=300, blank=True, help_text="Base model as the provider names it."
    )
    hyperparameters = models.JSONField(default=dict, blank=True)
    fine_tuned_model = models.CharField(max_length=300, blank=True, db_index=True)
    model_deleted_at = models.DateTimeField(null=True, blank=True)
    trained_tokens = models.BigIntegerField(null=True, blank=True)
    # The runs list's cost sort key, kept by the database itself (migration 0012: a trigger on
    # every insert or update of a job, and on every change to the base-model catalog), so no
    # write path can leave it stale. Pages show ``jobs.costs.job_cost``, the same number.
    cost_usd = models.DecimalField(
        max_digits=32, decimal_places=10, null=True, blank=True, editable=False
    )
    estimated_finish = models.DateTimeField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    result_files = models.JSONField(default=list, blank=True)
    training_file_id = models.CharField(max_length=100, blank=True)
    validation_file_id = models.CharField(max_length=100, blank=True)
    provider_created_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Summary kept up to date by each sync, so lists never aggregate metric rows.
    total_steps = models.IntegerField(null=True, blank=True)
    last_step = models.IntegerField(null=True, blank=True)
    # The provider's own word for the status where it has words of its own (Together's
    # ``compressing``…); ``status`` is always Tuneboard's lifecycle.
    provider_status = models.CharField(max_length=64, blank=True, default="")
    final_train_loss = models.FloatField(null=True, blank=True)
    best_full_valid_loss = models.FloatField(null=True, blank=True)
    best_full_valid_step = models.IntegerField(null=True, blank=True)
    # Sync bookkeeping.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    # Someone has the job's page open (its live JSON was polled): synced every
    # WATCHED_POLL_INTERVAL seconds until then, within the connection's budget.
    watched_until = models.DateTimeField(null=True, blank=True, editable=False)
    poll_failures = models.IntegerField(default=0)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    last_sync_error = models.TextField(blank=True)
    last_event_id = models.CharField(max_length=100, blank=True)
    launch_error = models.TextField(blank=True)
    archived = models.BooleanField(default=False)
    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.LAUNCHED)
    # The terminal status notifications were sent for: set by one conditional UPDATE, so each
    # terminal state is announced exactly once however many syncs see it.
    notified_status = models.CharField(max_length=20, blank=True, editable=False)
    # A guardrail (or a person) asked a self-hosted run to stop: the API tells its training
    # script so in its next reply.
    stop_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "provider_job_id"], name="jobs_job_unique_provider_id"
            )
        ]
        indexes = [
            models.Index(
                fields=["next_poll_at"],
                name="jobs_job_due_for_poll",
                condition=Q(next_poll_at__isnull=False),
            ),
            models.Index(fields=["status", "-created_at"]),
            # The runs list: newest first among unarchived runs, index-only.
            models.Index(
                fields=["-created_at", "-id"],
                name="jobs_job_listed_recent",
                condition=Q(archived=False),
            ),
            models.Index(fields=["base_model"]),
            # The runs list's tag filter (``tags @> '["x"]'``) without reading every row.
            GinIndex(fields=["tags"], opclasses=["jsonb_path_ops"], name="jobs_job_tags"),
            # The runs list sorted by cost, each way (NULL, unknown, last either way).
            models.Index(
                F("cost_usd").desc(nulls_last=True),
                F("created_at").desc(),
                F("id").desc(),
                name="jobs_job_listed_cost_desc",
                condition=Q(archived=False),
            ),
            models.Index(
                F("cost_usd").asc(nulls_last=True),
                F("created_at").desc(),
                F("id").desc(),
                name="jobs_job_listed_cost_asc",
                condition=Q(archived=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.provider_job_id or str(self.id)

    @property
    def display_name(self) -> str:
        return self.name or self.provider_job_id or f"Job {str(self.id)[:8]}"

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def status_is_known(self) -> bool:
        return self.status in self.Status.values

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            return None
        return max(0.0, (end - self.started_at).total_seconds())


class JobEvent(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="events")
    provider_event_id = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    level = models.CharField(max_length=10, default="info")
    type = models.CharField(max_length=20, default="message")
    message = models.TextField()
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "provider_event_id"], name="jobs_event_unique")
        ]
        indexes = [models.Index(fields=["job", "-created_at"])]

    def __str__(self) -> str:
        return self.message[:80]


class Checkpoint(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="checkpoints")
    provider_checkpoint_id = models.CharField(max_length=100)
    step = models.IntegerField()
    model_name = models.CharField(max_length=300)
    metrics = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    # When we learned the provider no longer serves it: gone from the job's checkpoint list
    # (OpenAI keeps only the last three epochs'), or its model answered 404.
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["step"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "provider_checkpoint_id"], name="jobs_ckpt_unique"
            )
        ]

    def __str__(self) -> str:
        return self.model_name

    @property
    def short_name(self) -> str:
        """``ft:<base>:<org>:<suffix>:<id>:ckpt-step-N`` as ``…:<id>:ckpt-step-N``: the part
        that tells checkpoints apart (the full name is one hover or copy away)."""
        parts = self.model_name.split(":")
        return "…:" + ":".join(parts[-2:]) if len(parts) > 3 else self.model_name


# The metrics MetricPoint keeps as columns (and the curves show).
METRIC_COLUMNS = (
    "train_loss",
    "train_accuracy",
    "valid_loss",
    "valid_accuracy",
    "full_valid_loss",
    "full_valid_accuracy",
)


class MetricPoint(models.Model):
    """One row per job and step; known metrics as columns (fast charts), others in ``extra``."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="metric_points")
    step = models.IntegerField()
    train_loss = models.FloatField(null=True, blank=True)
    train_accuracy = models.FloatField(null=True, blank=True)
    valid_loss = models.FloatField(null=True, blank=True)
    valid_accuracy = models.FloatField(null=True, blank=True)
    full_valid_loss = models.FloatField(null=True, blank=True)
    full_valid_accuracy = models.FloatField(null=True, blank=True)
    extra = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["step"]
        constraints = [
            models.UniqueConstraint(fields=["job", "step"], name="jobs_metric_unique_step")
        ]

    def __str__(self) -> str:
        return f"{self.job_id} step {self.step}"


class MetricCurve(models.Model):
    """A run's metric curves reduced for display at one point budget (``level``), maintained
    by the metric ingest (``jobs.curvestore``): ``CHUNK`` buckets of ``width`` steps per row,
    ``{metric: [first step, first value, lowest step, lowest value, highest step, highest
    value, last step, last value, …]}`` (see ``jobs.reduction``). Derived from the metric rows
    alone: ``manage.py reduce_curves`` rebuilds it from them."""

    # Indexed by the unique constraint, which starts with the job.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+", db_index=False)
    level = models.PositiveIntegerField(help_text="At most this many points per series.")
    chunk = models.PositiveIntegerField(help_text="Buckets chunk × CHUNK onwards.")
    width = models.PositiveIntegerField(help_text="Steps per bucket.")
    buckets = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "level", "chunk"], name="jobs_metriccurve_one_per_chunk"
            )
        ]

    def __str__(self) -> str:
        return f"curves of {self.job_id} ({self.level} points, chunk {self.chunk})"


# --- Price quotes ---------------------------------------------------------------------------


class PriceQuote(Leased):
    """A provider's own estimate of what a launch would cost (for adapters that quote prices:
    Together's ``/fine-tunes/estimate-price``). Asked from the launch page; a task uploads the
    training file (the launch reuses the upload) and asks. One per connection and inputs
    (``key``): asking again returns the same quote."""

    class Status(models.TextChoices):
        PENDING = "pending", "Asking the provider"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.CASCADE, related_name="price_quotes"
    )
    key = models.CharField(max_length=64, help_text="sha256 of the inputs below.")
    base_model = models.CharField(max_length=300)
    method = models.CharField(max_length=20)
    training_dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.CASCADE, related_name="+"
    )
    validation_dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    hyperparameters = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    price_usd = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    train_tokens = models.BigIntegerField(null=True, blank=True)
    eval_tokens = models.BigIntegerField(null=True, blank=True)
    allowed_to_proceed = models.BooleanField(null=True, blank=True)
    answer = models.JSONField(default=dict, blank=True, help_text="The provider's answer.")
    attempts = models.IntegerField(default=0, help_text="Tries that failed transiently.")
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "key"], name="jobs_pricequote_unique_key")
        ]

    def __str__(self) -> str:
        return f"quote {self.pk} for {self.base_model} ({self.status})"


# --- History: imports from a provider ---------------------------------------------------------


class ImportRun(Leased):
    """One import of a connection's whole fine-tuning history (jobs, events, checkpoints,
    metrics and the training/validation files). At most one is queued or running per
    connection; the task works in steps and can be interrupted and resumed at any point."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    ACTIVE = ("queued", "running")

    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.CASCADE, related_name="import_runs"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # The provider's jobs in the order they are processed (Job ids), fixed once listed.
    job_ids = models.JSONField(null=True, blank=True, editable=False)
    cursor = models.IntegerField(default=0, help_text="Jobs of the list processed so far.")
    jobs_total = models.IntegerField(default=0)
    jobs_done = models.IntegerField(default=0)
    jobs_created = models.IntegerField(default=0)
    files_downloaded = models.IntegerField(default=0)
    files_missing = models.IntegerField(default=0)
    errors = models.IntegerField(default=0)
    failures = models.IntegerField(default=0, help_text="Transient failures in a row.")
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection"],
                condition=Q(status__in=("queued", "running")),
                name="jobs_importrun_one_active_per_connection",
            )
        ]

    def __str__(self) -> str:
        return f"import {self.pk} of {self.connection_id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class ImportedFile(models.Model):
    """What became of a provider file an import wanted: stored as a dataset, gone at the
    provider (404), or refused as a dataset. Imports never ask twice for the same file."""

    class Status(models.TextChoices):
        DOWNLOADED = "downloaded", "Downloaded"
        MISSING = "missing", "No longer served by the provider"
        REJECTED = "rejected", "Not a usable dataset file"

    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.CASCADE, related_name="imported_files"
    )
    provider_file_id = models.CharField(max_length=100)
    status = models.CharField(max_length=12, choices=Status.choices)
    dataset = models.ForeignKey(
        "datasets.Dataset", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    bytes = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "provider_file_id"], name="jobs_importedfile_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider_file_id} ({self.status})"


# --- Webhooks in --------------------------------------------------------------------------------


class WebhookDelivery(models.Model):
    """A signed webhook received from a provider; the unique id makes replays harmless."""

    class Outcome(models.TextChoices):
        SYNC_QUEUED = "sync_queued", "Sync queued"
        UNKNOWN_JOB = "unknown_job", "Job not known here"
        IGNORED = "ignored", "Ignored"

    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    webhook_id = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    provider_job_id = models.CharField(max_length=100, blank=True)
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="webhook_deliveries"
    )
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "webhook_id"], name="jobs_webhookdelivery_unique_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"


# --- Notifications ------------------------------------------------------------------------------


class NotificationSetting(models.Model):
    """A user's choices: an email when their own jobs finish, and/or a Slack-compatible URL."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_setting"
    )
    email_enabled = models.BooleanField(default=False)
    slack_webhook_url = models.URLField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"notifications of {self.user}"


class Notification(models.Model):
    """One message about one terminal state to one recipient; sent by a retrying task."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SLACK = "slack", "Slack webhook"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    # About a job, or about a sweep as a whole ("sweep:<status>" in job_status).
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    sweep = models.ForeignKey(
        "Sweep", null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    job_status = models.CharField(max_length=20)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    target = models.CharField(max_length=500)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.IntegerField(default=0)
    claim = models.UUIDField(null=True, blank=True, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["job", "job_status", "channel", "target"], name="jobs_notification_once"
            ),
            models.UniqueConstraint(
                fields=["sweep", "job_status", "channel", "target"],
                name="jobs_notification_sweep_once",
            ),
            models.CheckConstraint(
                condition=Q(job__isnull=False, sweep__isnull=True)
                | Q(job__isnull=True, sweep__isnull=False),
                name="jobs_notification_job_or_sweep",
            ),
        ]

    def __str__(self) -> str:
        about = f"sweep {self.sweep_id}" if self.sweep_id else f"{self.job_id}"
        return f"{self.channel} to {self.target} about {about} ({self.job_status})"


# --- Controls -----------------------------------------------------------------------------------


class JobControl(models.Model):
    """A provider action asked for on the run page or in the admin (cancel, pause, resume,
    sync, deleting the model), done by a task so that no page waits on the provider. The run
    page shows it while it is under way, then its outcome; ``requested_by`` is who asked."""

    class Action(models.TextChoices):
        CANCEL = "cancel", "Cancel"
        PAUSE = "pause", "Pause"
        RESUME = "resume", "Resume"
        SYNC = "sync", "Sync"
        DELETE_MODEL = "delete_model", "Delete the fine-tuned model"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    PENDING = frozenset({"queued", "running"})

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="controls")
    action = models.CharField(max_length=20, choices=Action.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What happened, as the run page says it: the new status, the new events, or the error.
    outcome = models.TextField(blank=True)

    class Meta:
        ordering = ["-requested_at", "-id"]
        indexes = [models.Index(fields=["job", "-requested_at"], name="jobs_control_job_recent")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} of {self.job_id} ({self.state})"

    @property
    def pending(self) -> bool:
        return self.state in self.PENDING


# --- Guardrails ---------------------------------------------------------------------------------


class Guardrail(models.Model):
    """A rule watching one job (``jobs.guardrail_rules``) and what to do when it fires: notify,
    pause (where the provider can pause) or cancel (a self-hosted run is told to stop)."""

    class Kind(models.TextChoices):
        OVERFITTING = "overfitting", "Overfitting"
        DIVERGENCE = "divergence", "Divergence"
        ACCURACY_STUCK = "accuracy_stuck", "Accuracy stuck"
        SPEND_CAP = "spend_cap", "Spend cap"
        TIME_LIMIT = "time_limit", "Time limit"

    class Action(models.TextChoices):
        NOTIFY = "notify", "Notify"
        PAUSE = "pause", "Pause"
        CANCEL = "cancel", "Cancel"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="guardrails")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    params = models.JSONField(default=dict, blank=True)
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.NOTIFY)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["job", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["job", "kind"], name="jobs_guardrail_one_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} → {self.get_action_display().lower()} on {self.job_id}"


class GuardrailFiring(models.Model):
    """A guardrail that fired: stored once (a sync run again does not fire it twice), with the
    step, the reason and what was done about it."""

    guardrail = models.OneToOneField(Guardrail, on_delete=models.CASCADE, related_name="firing")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="guardrail_firings")
    kind = models.CharField(max_length=20)
    action = models.CharField(max_length=10)
    step = models.IntegerField(null=True, blank=True)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    outcome = models.TextField(blank=True, help_text="What the action did.")
    fired_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-fired_at", "-id"]
        indexes = [models.Index(fields=["job", "-fired_at"], name="jobs_firing_job_recent")]

    def __str__(self) -> str:
        return f"{self.kind} fired on {self.job_id} at step {self.step}"


# --- Sweeps -------------------------------------------------------------------------------------


class Sweep(models.Model):
    """One frozen training (and validation) dataset × a grid or a random sample of
    hyperparameters on one connection, launched a few runs at a time within a hard budget
    (``jobs.sweeps``). Its runs are planned when it is made (``SweepRun``)."""

    class Mode(models.TextChoices):
        GRID = "grid", "Grid (every combination)"
        RANDOM = "random", "Random sample"

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        CANCELLING = "cancelling", "Cancelling"
        CANCELLED = "cancelled", "Cancelled"
        STOPPED = "stopped", "Stopped by its budget"
        FINISHED = "finished", "Finished"

    # Still launching or waiting for its runs: advanced by beat and when a run ends.
    ACTIVE = frozenset({"running", "cancelling"})

    name = models.CharField(max_length=200)
    connection = models.ForeignKey(
        ProviderConnection, on_delete=models.PROTECT, related_name="sweeps"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    method = models.CharField(max_length=20, default=Job.Method.SUPERVISED)
    training_dataset = models.ForeignKey(
        "datasets.Dataset", on_delete=models.PROTECT, related_name="training_sweeps"
    )
    validation_dataset = models.ForeignKey(
        "datasets.Dataset",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="validation_sweeps",
    )
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.GRID)
    # {name: [values]} as chosen: "base_model", "seed" and the connection's declared parameters.
    space = models.JSONField(default=dict)
    samples = models.IntegerField(null=True, blank=True, help_text="Runs drawn (random mode).")
    sample_seed = models.BigIntegerField(default=0)
    budget_usd = models.DecimalField(max_digits=14, decimal_places=4)
    planned_cost_usd = models.DecimalField(max_digits=14, decimal_places=4, editable=False)
    concurrency = models.PositiveIntegerField()
    # The rules every run gets ([{kind, params, action}]); None: the connection's defaults.
    guardrails = models.JSONField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.RUNNING, editable=False
    )
    # Why the sweep launches nothing more (budget, cancel) or what it waits for.
    status_message = models.TextField(blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Beat advances the sweeps still under way: a handful among many finished ones.
            models.Index(
                fields=["status"],
                name="jobs_sweep_active",
                condition=Q(status__in=["running", "cancelling"]),
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class SweepRun(models.Model):
    """One planned run of a sweep: what it trains with, what it was planned to cost, and the
    job that runs it once launched (a launch claim: the job and this link are written in one
    transaction, so a run is launched at most once)."""

    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        LAUNCHED = "launched", "Launched"
        SKIPPED = "skipped", "Not launched"

    sweep = models.ForeignKey(Sweep, on_delete=models.CASCADE, related_name="runs")
    index = models.PositiveIntegerField()  # 1-based, the launch order
    base_model = models.CharField(max_length=300)
    hyperparameters = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField(null=True, blank=True)
    billed_tokens = models.BigIntegerField(null=True, blank=True)
    planned_cost_usd = models.DecimalField(max_digits=14, decimal_places=4)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PLANNED)
    job = models.OneToOneField(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="sweep_run"
    )
    launched_at = models.DateTimeField(null=True, blank=True)
    # At its launch: the sweep's runs still under way (the concurrency limit held) and the
    # spend committed with it (actual for finished runs, planned for the others).
    active_at_launch = models.PositiveIntegerField(null=True, blank=True)
    committed_at_launch = models.DecimalField(
        max_digits=14, decimal_places=4, null=True, blank=True
    )
    skip_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["sweep", "index"]
        constraints = [
            models.UniqueConstraint(fields=["sweep", "index"], name="jobs_sweeprun_unique_index")
        ]

    def __str__(self) -> str:
        return f"{self.sweep} #{self.index}"

    @property
    def spend(self) -> Decimal:
        """What a launched run counts against the budget: its cost once final and known (the
        same number the run's page shows), else what it was planned to cost."""
        job = self.job
        if job is not None and job.is_terminal and job.cost_usd is not None:
            return Decimal(job.cost_usd)
        return self.planned_cost_usd
