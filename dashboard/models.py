import hashlib
import secrets

from django.conf import settings
from django.db import models

# The most runs one comparison (page or share link) holds.
MAX_COMPARE = 20


class ShareLink(models.Model):
    """A read-only public link to one run, a comparison of runs, or an evaluation.

    Only the SHA-256 of the token is stored: the plaintext is shown once to its creator. The
    page is live while a run is still going; once every run is terminal a frozen ``snapshot``
    (figures, metrics, hyperparameters, diagnosis) is what the page shows from then on.
    """

    class Kind(models.TextChoices):
        RUN = "run", "Run"
        COMPARISON = "comparison", "Comparison"
        EVALUATION = "evaluation", "Evaluation"

    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    # The run of a run link (a deleted run takes its links with it).
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Every run of the link, in the order the page shows them (the run itself for a run link).
    job_ids = models.JSONField(default=list)
    # The evaluation of an evaluation link; its prompts, references and outputs are shown
    # only when the creator chose to include them (the summary always is).
    evaluation = models.ForeignKey(
        "evals.Evaluation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    include_outputs = models.BooleanField(default=False)
    label = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    last_viewed_at = models.DateTimeField(null=True, blank=True)
    snapshot = models.JSONField(null=True, blank=True, editable=False)
    snapshot_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["created_by", "-created_at"], name="sharelink_by_creator"),
        ]

    def __str__(self) -> str:
        return f"share link {self.pk} ({self.kind}: {self.label or 'untitled'})"

    @staticmethod
    def new_token() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def hash_of(token: str) -> str:
        """What ``token_hash`` stores for a token (its SHA-256, hex)."""
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def is_active(self, now: object = None) -> bool:
        from django.utils import timezone

        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class RunDiagnosis(models.Model):
    """The fit diagnosis of a finished run, computed from all its metric rows when it
    finished (the curves themselves are ``jobs.MetricCurve``, kept by the ingest).

    A cache: ``fingerprint`` names the state of the run it was computed from, and a run whose
    fingerprint changed (or that is not finished) is diagnosed from its metric rows again."""

    job = models.OneToOneField("jobs.Job", on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=200)
    diagnosis = models.JSONField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "run diagnoses"

    def __str__(self) -> str:
        return f"diagnosis of {self.job_id}"


class RunListPreference(models.Model):
    """How one user wants the runs list: the optional columns they hid
    (``dashboard.columns.CHOOSABLE`` keys; a column added later shows until hidden)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="run_list_preference"
    )
    hidden_columns = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"runs list columns of user {self.user_id}"
