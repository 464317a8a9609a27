from django.conf import settings
from django.db import models


class Access(models.Model):
    """Holds the app-wide role permissions; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("read_all", "Can read runs, datasets and evaluations"),
            ("member_actions", "Can create datasets, launch and control jobs, create share links"),
        ]

    def __str__(self) -> str:
        return "access"


class Heartbeat(models.Model):
    """Last time a periodic component proved it was alive (written by a worker task)."""

    name = models.CharField(max_length=50, unique=True)
    last_seen = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seen:%Y-%m-%d %H:%M:%S}"


class TaskProbe(models.Model):
    """A round trip through broker and worker, requested from the System page."""

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-requested_at"]

    def __str__(self) -> str:
        return f"probe {self.pk}"

    @property
    def round_trip_seconds(self) -> float | None:
        if self.completed_at is None:
            return None
        return (self.completed_at - self.requested_at).total_seconds()


class AuditEntry(models.Model):
    """Who did what to which object, and when (launches, controls, imports, share links…)."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=40, db_index=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at"]
        indexes = [models.Index(fields=["object_type", "object_id"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_id}"


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

    def is_active(self, now: object = None) -> bool:
        from django.utils import timezone

        now = now or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class RunCurve(models.Model):
    """Display-ready curves of a finished run at one point budget (``level``): every metric
    downsampled (min/max per bucket) from all its metric rows; the top level also keeps the
    run's fit diagnosis.

    A cache: ``fingerprint`` names the state of the run it was computed from, and a run whose
    fingerprint changed (or that is not finished) is read from its metric rows again."""

    job = models.ForeignKey("jobs.Job", on_delete=models.CASCADE, related_name="+")
    level = models.PositiveIntegerField(help_text="At most this many points per series.")
    fingerprint = models.CharField(max_length=200)
    row_count = models.PositiveIntegerField(help_text="Metric rows the curves were made from.")
    points = models.JSONField(help_text="{metric: [[step, …], [value, …]]}")
    diagnosis = models.JSONField(null=True, blank=True)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "level"], name="runcurve_one_per_level")
        ]

    def __str__(self) -> str:
        return f"curves of {self.job_id} ({self.level} points)"


_WARM_FIELDS = frozenset({"status", "next_poll_at", "last_step", "total_steps", "last_synced_at"})


def _warm_finished_run(
    sender: type, instance: models.Model, update_fields: object = None, **kwargs: object
) -> None:
    """A run saved in its final state (its last sync) gets its display curves and diagnosis
    computed once the transaction commits, so no page has to read its metric rows again."""
    if instance.status not in instance.TERMINAL or instance.next_poll_at is not None:  # type: ignore[attr-defined]
        return
    if update_fields is not None and not _WARM_FIELDS & set(update_fields):  # type: ignore[call-overload]
        return
    from django.db import transaction

    job_id = instance.pk
    transaction.on_commit(lambda: _warm(job_id))


def _warm(job_id: object) -> None:
    import logging

    from dashboard import curves

    try:
        curves.warm(job_id)
    except Exception:  # a cache: never let it break the sync that finished the run
        logging.getLogger("tuneboard.dashboard").exception("could not cache curves of %s", job_id)


models.signals.post_save.connect(
    _warm_finished_run, sender="jobs.Job", dispatch_uid="dashboard.warm_finished_run"
)
