"""The sandbox's own state. Every object belongs to an ``owner`` (the organisation derived from
the API key), so two keys never see each other's files, jobs or models."""

from __future__ import annotations

from django.db import models


class SandboxAccount(models.Model):
    """Per-organisation switches: response profile and outgoing webhooks."""

    class Profile(models.TextChoices):
        CONTRACT = "contract", "Contract (strict-valid shapes)"
        REALISM = "realism", "Realism (quirks seen from the real API)"

    owner = models.CharField(max_length=40, unique=True)
    profile = models.CharField(max_length=10, choices=Profile.choices, default=Profile.CONTRACT)
    webhook_url = models.URLField(blank=True, max_length=500)
    webhook_secret = models.CharField(max_length=200, blank=True)
    # Requests per SANDBOX_RATE_LIMIT_WINDOW for this key; null: SANDBOX_RATE_LIMIT.
    rate_limit = models.PositiveIntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.owner


class SandboxFile(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    owner = models.CharField(max_length=40, db_index=True)
    filename = models.CharField(max_length=255)
    purpose = models.CharField(max_length=40)
    bytes = models.BigIntegerField()
    # Sub-second precision keeps list order stable for files made within one second.
    created_at = models.FloatField()
    expires_at = models.BigIntegerField(null=True, blank=True)
    content = models.FileField(upload_to="sandbox/files/", max_length=300)
    deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["owner", "created_at"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.filename})"


class SandboxUpload(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    owner = models.CharField(max_length=40, db_index=True)
    filename = models.CharField(max_length=255)
    purpose = models.CharField(max_length=40)
    mime_type = models.CharField(max_length=100)
    bytes = models.BigIntegerField()
    created_at = models.BigIntegerField()
    expires_at = models.BigIntegerField()
    status = models.CharField(max_length=12, default="pending")
    file = models.ForeignKey(SandboxFile, null=True, blank=True, on_delete=models.SET_NULL)
    # The request's expires_after (seconds after creation), for the file the upload produces.
    file_expires_after = models.IntegerField(null=True, blank=True)

    def __str__(self) -> str:
        return self.id


class SandboxUploadPart(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    upload = models.ForeignKey(SandboxUpload, on_delete=models.CASCADE, related_name="parts")
    created_at = models.BigIntegerField()
    size = models.BigIntegerField()
    content = models.FileField(upload_to="sandbox/parts/", max_length=300)

    def __str__(self) -> str:
        return self.id


class SandboxJob(models.Model):
    """A simulated fine-tuning job. Its timeline is fixed at creation (phase durations and
    seconds per step); reads materialise events, checkpoints and the final state up to now."""

    id = models.CharField(primary_key=True, max_length=40)
    owner = models.CharField(max_length=40, db_index=True)
    organization_id = models.CharField(max_length=40)
    model = models.CharField(max_length=200)
    training_file = models.CharField(max_length=40)
    validation_file = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001 - null is meaningful in the API
    method_type = models.CharField(max_length=20, default="supervised")
    requested_hyperparameters = models.JSONField(default=dict)
    hyperparameters = models.JSONField(null=True, blank=True)
    suffix = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - null is meaningful in the API
    seed = models.BigIntegerField()
    metadata = models.JSONField(null=True, blank=True)
    integrations = models.JSONField(null=True, blank=True)
    # Which surface made the job (``openai`` or ``together``): each lists only its own. The
    # engine is the same; ``provider_params`` keeps what only the other surface knows (a
    # Together job's learning rate, LoRA settings, evals and checkpoints).
    api = models.CharField(max_length=10, default="openai", db_index=True)
    provider_params = models.JSONField(default=dict, blank=True)
    created_at = models.FloatField()
    # Timeline (seconds).
    validate_seconds = models.FloatField()
    queue_seconds = models.FloatField()
    seconds_per_step = models.FloatField()
    paused_at = models.FloatField(null=True, blank=True)
    paused_seconds = models.FloatField(default=0)
    # Run-clock position at which a resumed job leaves `queued` again.
    resume_mark = models.FloatField(null=True, blank=True)
    cancelled_at = models.FloatField(null=True, blank=True)
    # Facts about the data, measured at creation.
    n_examples = models.IntegerField(default=0)
    n_valid_examples = models.IntegerField(default=0)
    tokens_per_epoch = models.BigIntegerField(default=0)
    total_steps = models.IntegerField(default=0)
    failure = models.JSONField(null=True, blank=True)
    # Materialised state.
    status = models.CharField(max_length=20, default="validating_files", db_index=True)
    steps_done = models.IntegerField(default=0)
    phase_events = models.IntegerField(default=0)
    finished_at = models.BigIntegerField(null=True, blank=True)
    fine_tuned_model = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001 - null is meaningful in the API
    result_file = models.CharField(max_length=40, null=True, blank=True)  # noqa: DJ001 - null is meaningful in the API
    trained_tokens = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["owner", "-created_at"])]

    def __str__(self) -> str:
        return self.id


class SandboxEvent(models.Model):
    seq = models.BigAutoField(primary_key=True)
    id = models.CharField(max_length=40, unique=True)
    job = models.ForeignKey(SandboxJob, on_delete=models.CASCADE, related_name="events")
    created_at = models.BigIntegerField()
    level = models.CharField(max_length=5, default="info")
    message = models.TextField()
    type = models.CharField(max_length=10, default="message")
    data = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["job", "-seq"])]

    def __str__(self) -> str:
        return self.id


class SandboxCheckpoint(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    job = models.ForeignKey(SandboxJob, on_delete=models.CASCADE, related_name="checkpoints")
    step_number = models.IntegerField()
    created_at = models.BigIntegerField()
    fine_tuned_model_checkpoint = models.CharField(max_length=300, unique=True)
    metrics = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "step_number"], name="sandbox_ckpt_job_step")
        ]

    def __str__(self) -> str:
        return self.fine_tuned_model_checkpoint


class SandboxModel(models.Model):
    """A fine-tuned model (base models come from the catalog)."""

    id = models.CharField(primary_key=True, max_length=300)
    owner = models.CharField(max_length=40, db_index=True)
    created = models.BigIntegerField()
    job = models.OneToOneField(SandboxJob, on_delete=models.CASCADE, related_name="model_obj")
    deleted = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.id


class SandboxFault(models.Model):
    """Makes matching requests fail: the next ``remaining`` ones, or each with ``rate``."""

    class Kind(models.TextChoices):
        ERROR_500 = "500", "HTTP 500"
        ERROR_503 = "503", "HTTP 503"
        RATE_LIMIT = "429", "HTTP 429 with Retry-After"
        HANG = "hang", "Hang past the client's timeout"
        DROP = "drop", "Drop the connection"

    owner = models.CharField(max_length=40, db_index=True)
    kinds = models.JSONField()
    path_regex = models.CharField(max_length=200, blank=True)
    remaining = models.IntegerField(null=True, blank=True)
    rate = models.FloatField(default=1.0)
    retry_after = models.FloatField(default=1)
    hang_seconds = models.FloatField(default=30)
    injected = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"fault {self.pk} {self.kinds}"


class SandboxWebhookDelivery(models.Model):
    id = models.CharField(primary_key=True, max_length=40)
    owner = models.CharField(max_length=40, db_index=True)
    job = models.ForeignKey(SandboxJob, on_delete=models.CASCADE, related_name="webhooks")
    type = models.CharField(max_length=40)
    url = models.URLField(max_length=500)
    payload = models.JSONField()
    attempts = models.IntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_status = models.IntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "type"], name="sandbox_webhook_once_per_state")
        ]
        verbose_name_plural = "sandbox webhook deliveries"

    def __str__(self) -> str:
        return f"{self.type} {self.job_id}"


class SandboxCompletion(models.Model):
    """One authenticated ``POST …/chat/completions`` and how the sandbox answered it (200, the
    error status, or an injected fault's status), so tests can count requests that reached the
    sandbox. Written by ``sandbox.completion_log``; see there for what is counted."""

    owner = models.CharField(max_length=40, db_index=True)
    model = models.CharField(max_length=300)
    # sha256 of the canonical JSON of the request's `messages` ("" when there was none).
    prompt_sha256 = models.CharField(max_length=64)
    status_code = models.IntegerField()
    stream = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.model} {self.status_code}"
