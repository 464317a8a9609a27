"""Shared infrastructure models. Their tables keep the names they had when they lived in the
``dashboard`` app (moved by state-only migrations), so existing installations keep their rows."""

from django.conf import settings
from django.db import models


class Access(models.Model):
    """Holds the app-wide role permissions; it has no table of its own."""

    class Meta:
        managed = False
        db_table = "dashboard_access"
        default_permissions = ()
        permissions = [
            ("read_all", "Can read runs, datasets and evaluations"),
            ("member_actions", "Can create datasets, launch and control jobs, create share links"),
        ]

    def __str__(self) -> str:
        return "access"


class Heartbeat(models.Model):
    """Last time a periodic component proved it was alive: "beat" is written by beat itself on
    its loop, "worker" by the heartbeat task beat sends to the workers."""

    name = models.CharField(max_length=50, unique=True)
    last_seen = models.DateTimeField()
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        db_table = "dashboard_heartbeat"

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
        db_table = "dashboard_taskprobe"
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
        db_table = "dashboard_auditentry"
        ordering = ["-at"]
        indexes = [
            models.Index(fields=["object_type", "object_id"], name="dashboard_a_object__918ec1_idx")
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_type} {self.object_id}"


class Leased(models.Model):
    """The lease columns of a piece of background work: who works on it now ("" while it
    waits in the queue), by when that owner must renew it (or the queued work be claimed),
    and its last sign of progress. The rules are in ``core.leases``."""

    lease_owner = models.CharField(max_length=200, blank=True, default="", editable=False)
    lease_expires_at = models.DateTimeField(null=True, blank=True, editable=False, db_index=True)
    lease_heartbeat_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class ApiToken(models.Model):
    """A user's personal token for Tuneboard's REST API. Only its SHA-256 is stored: the token
    is shown once, when it is made. What it may do is its scope, and never more than its
    owner's role allows at the time of use."""

    class Scope(models.TextChoices):
        READ = "read", "Read only"
        WRITE = "write", "Read and write"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text="The token's first characters.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=5, choices=Scope.choices, default=Scope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
