from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.models import Leased
from datasets.validation import ModelSpec

MAX_TAGS = 20
MAX_TAG_LENGTH = 40


class BaseModel(models.Model):
    """A model that can be fine-tuned, with the limits and prices the validator needs.

    Seeded from ``datasets.validation.DEFAULT_MODELS`` by a data migration; prices and dates
    change, so this table (edited in the admin) is the one the app trusts afterwards.
    """

    class Encoding(models.TextChoices):
        O200K = "o200k_base", "o200k_base"
        CL100K = "cl100k_base", "cl100k_base"

    id = models.CharField("model id", primary_key=True, max_length=100)
    provider_kind = models.CharField(max_length=30, default="openai")
    encoding = models.CharField(max_length=30, choices=Encoding.choices)
    training_context = models.PositiveIntegerField(help_text="Tokens per training example.")
    inference_context = models.PositiveIntegerField()
    training_price_per_1m = models.DecimalField(
        "training price / 1M tokens (USD)", max_digits=12, decimal_places=4, null=True, blank=True
    )
    input_price_per_1m = models.DecimalField(
        "input price / 1M tokens (USD)", max_digits=12, decimal_places=4, null=True, blank=True
    )
    output_price_per_1m = models.DecimalField(
        "output price / 1M tokens (USD)", max_digits=12, decimal_places=4, null=True, blank=True
    )
    supports_vision = models.BooleanField(default=False)
    supports_dpo = models.BooleanField(default=False)
    legacy_completion = models.BooleanField(
        default=False, help_text="Trains on prompt/completion lines instead of chat messages."
    )
    deprecated_on = models.DateField(null=True, blank=True)
    shutdown_on = models.DateField(null=True, blank=True)
    # For providers that list their fine-tunable models (Together): the limits the provider
    # gave for this model, and when; the launch form's ranges and defaults come from them.
    limits = models.JSONField(default=dict, blank=True)
    listed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(training_context__gt=0) & Q(inference_context__gt=0),
                name="basemodel_contexts_positive",
            ),
        ]

    def __str__(self) -> str:
        return self.id

    def to_spec(self) -> ModelSpec:
        return ModelSpec(
            id=self.id,
            provider_kind=self.provider_kind,
            encoding=self.encoding,
            training_context=self.training_context,
            inference_context=self.inference_context,
            training_price_per_1m=_plain(self.training_price_per_1m),
            input_price_per_1m=_plain(self.input_price_per_1m),
            output_price_per_1m=_plain(self.output_price_per_1m),
            supports_vision=self.supports_vision,
            supports_dpo=self.supports_dpo,
            legacy_completion=self.legacy_completion,
            deprecated_on=self.deprecated_on,
            shutdown_on=self.shutdown_on,
        )

    def is_shut_down(self, today: date | None = None) -> bool:
        today = today or timezone.localdate()
        return self.shutdown_on is not None and self.shutdown_on <= today


def _plain(value: Decimal | None) -> Decimal | None:
    # The column pads to 4 places; stripping the padding keeps costs computed from the
    # catalog identical to the engine's own DEFAULT_MODELS ("0.70299", not "0.7029900").
    if value is None:
        return None
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


class Dataset(Leased):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        VALIDATING = "validating", "Validating"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"
        ERROR = "error", "Error"

    class Format(models.TextChoices):
        CHAT = "chat", "Chat"
        CHAT_TOOLS = "chat_tools", "Chat with tools"
        VISION = "vision", "Vision"
        DPO = "dpo", "Preference (DPO)"
        LEGACY_COMPLETION = "legacy_completion", "Legacy prompt/completion"
        TEXT = "text", "Text"
        MIXED = "mixed", "Mixed"
        UNKNOWN = "unknown", "Unknown"

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    tags = ArrayField(
        models.CharField(max_length=MAX_TAG_LENGTH), size=MAX_TAGS, default=list, blank=True
    )
    file = models.FileField(max_length=255)
    original_filename = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(help_text="Bytes.")
    sha256 = models.CharField(max_length=64, unique=True)
    line_count = models.BigIntegerField()
    # {"lines": [...], "offsets": [...]}: where some lines start, so the example browser can
    # seek instead of reading the file from the top (see datasets/lineindex.py).
    line_index = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="datasets",
    )
    uploaded_at = models.DateTimeField(default=timezone.now)

    format = models.CharField(max_length=20, choices=Format.choices, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    progress_bytes = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(default=0)
    progress_at = models.DateTimeField(null=True, blank=True)
    # Set by the task that claimed the validation; its writes only land while it still
    # holds the claim, so a superseded or duplicate run changes nothing.
    claim = models.UUIDField(null=True, blank=True, editable=False)
    requested_model = models.ForeignKey(
        BaseModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    report = models.JSONField(null=True, blank=True)
    report_model = models.ForeignKey(
        BaseModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    n_examples = models.BigIntegerField(null=True, blank=True)
    # What each rule set ("provider family", datasets.validation.rulesets) makes of the
    # stored report: {"together": {"valid": true, "format": "text", "methods": ["supervised"],
    # "reason": ""}, ...}. Written with the report, so the launch form and launch rules learn
    # which families and methods a dataset can train without reading the report. A family
    # missing here was added after the dataset was validated.
    validity = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    validation_started_at = models.DateTimeField(null=True, blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)

    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # How a derived dataset was made, e.g. {"kind": "split", "fractions": {...}, "seed": 1,
    # "part": "train"} or {"kind": "subset", "mode": "random", "n": 50, "seed": 1}.
    derivation = models.JSONField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        indexes = [
            models.Index(fields=["-uploaded_at", "-id"], name="dataset_recent"),
            models.Index(fields=["status", "-uploaded_at"], name="dataset_status_recent"),
            models.Index(fields=["format", "-uploaded_at"], name="dataset_format_recent"),
            GinIndex(fields=["tags"], name="dataset_tags"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="dataset_sha256_hex"
            ),
            models.CheckConstraint(
                condition=Q(size__gte=0) & Q(progress_bytes__gte=0) & Q(progress_total__gte=0),
                name="dataset_sizes_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_busy(self) -> bool:
        return self.status in (self.Status.UPLOADED, self.Status.VALIDATING)

    @property
    def progress_percent(self) -> float:
        if not self.progress_total:
            return 0.0
        return min(100.0, 100.0 * self.progress_bytes / self.progress_total)

    @property
    def download_name(self) -> str:
        return self.original_filename or f"dataset-{self.pk}.jsonl"
