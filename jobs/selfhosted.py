"""Self-hosted runs: created and reported by their training script through the REST API
(``dashboard.api``), stored as jobs like any other so every page treats them the same.

Every write is idempotent, because the client resends whatever it is not sure arrived: a run
is known by its ``external_id`` on its connection; metrics are upserted by (run, step) and a
value already stored is never replaced by a missing one; checkpoints by step; events by their
id. No provider is ever called (``Traits.hosted`` is False)."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.services import audit_record
from datasets.models import Dataset
from jobs import guardrails, metrics, notifications, storable
from jobs.models import METRIC_COLUMNS, Checkpoint, Job, JobEvent, ProviderConnection
from jobs.providers import traits
from jobs.services import JobError

DEFAULT_CONNECTION = "Self-hosted"
SERIES_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]{0,63}$")
MAX_POINTS = 5000
MAX_SERIES = 64
MAX_HYPERPARAMETERS = 500
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
# Words a training script uses for Tuneboard's series (transformers' own names).
ALIASES = {"loss": "train_loss", "eval_loss": "full_valid_loss"}


class ReportConflict(JobError):
    """The report contradicts what is stored (a finished run told to run again, a hosted run
    reported to): answered with 409, nothing written."""


@dataclass(frozen=True)
class RunSpec:
    external_id: str = ""
    name: str = ""
    base_model: str = ""
    method: str = Job.Method.SUPERVISED
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    training_dataset: int | None = None
    validation_dataset: int | None = None
    tags: tuple[str, ...] = ()
    total_steps: int | None = None
    epochs: float | None = None
    connection: str = ""
    notes: str = ""
    # [{kind, params, action}]; None: the connection's defaults.
    guardrails: tuple[dict[str, Any], ...] | None = None


def _connection(name: str, actor: Any) -> ProviderConnection:
    name = storable.text(name, 100)  # as a name can be stored: no NUL, no lone surrogate
    if name:
        connection = ProviderConnection.objects.filter(name=name).first()
        if connection is None:
            raise JobError(f"There is no connection “{name}”.", field="connection")
        if traits(connection.kind).hosted:
            raise JobError(
                f"“{name}” is a {traits(connection.kind).label} connection: its runs are "
                "launched and synced by Tuneboard, not reported.",
                field="connection",
            )
        return connection
    kind = ProviderConnection.Kind.SELF_HOSTED
    existing = ProviderConnection.objects.filter(kind=kind, archived_at__isnull=True).first()
    if existing is not None:
        return existing
    connection, created = ProviderConnection.objects.get_or_create(
        name=DEFAULT_CONNECTION, defaults={"kind": kind, "base_url": ""}
    )
    if created:
        audit_record(actor=actor, action="connection_created", obj=connection)
    elif traits(connection.kind).hosted:
        raise JobError(
            f"A hosted connection is called “{DEFAULT_CONNECTION}”: name a self-hosted one.",
            field="connection",
        )
    return connection


def _dataset(pk: int | None, field_name: str) -> Dataset | None:
    if pk is None:
        return None
    dataset = Dataset.objects.filter(pk=pk).first()
    if dataset is None:
        raise JobError(f"There is no dataset {pk}.", field=field_name)
    return dataset


def _hyperparameters(spec: RunSpec) -> dict[str, Any]:
    if len(spec.hyperparameters) > MAX_HYPERPARAMETERS:
        raise JobError(
            f"At most {MAX_HYPERPARAMETERS} hyperparameters are kept.", field="hyperparameters"
        )
    values = storable.json_value(spec.hyperparameters) or {}
    epochs = spec.epochs
    if epochs is not None and "n_epochs" not in values:
        # Whole epochs only: the comparison aligns runs by epoch with it.
        values["n_epochs"] = int(epochs) if float(epochs).is_integer() else epochs
    return dict(values)


def selfhosted_run_create(*, spec: RunSpec, actor: Any) -> tuple[Job, bool]:
    """The run ``spec`` describes, and whether it was created now: a run already created with
    the same ``external_id`` on the same connection is returned as it is."""
    connection = _connection(spec.connection, actor)
    # Cleaned as it is stored (no NUL, no lone surrogate), so the same id finds the same run.
    external_id = storable.text(spec.external_id, 100) or f"run-{uuid.uuid4().hex}"
    existing = Job.objects.filter(connection=connection, provider_job_id=external_id).first()
    if existing is not None:
        return existing, False
    if spec.method not in Job.Method.values:
        raise JobError(f"“{spec.method}” is not a training method.", field="method")
    if spec.total_steps is not None and not 0 < spec.total_steps <= 2**31 - 1:
        raise JobError("Total steps must be a positive whole number.", field="total_steps")
    training = _dataset(spec.training_dataset, "training_dataset")
    validation = _dataset(spec.validation_dataset, "validation_dataset")
    now = timezone.now()
    status = Job.Status.QUEUED
    job = Job(
        connection=connection,
        provider_job_id=external_id,
        origin=Job.Origin.LAUNCHED,
        name=storable.text(spec.name, 200),
        notes=storable.text(spec.notes),
        tags=list(dict.fromkeys(storable.text(t, 50) for t in spec.tags if t.strip()))[:20],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        base_model=storable.text(spec.base_model, 300) or "unknown",
        model=storable.text(spec.base_model, 300),
        method=spec.method,
        hyperparameters=_hyperparameters(spec),
        training_dataset=training,
        validation_dataset=validation,
        total_steps=spec.total_steps,
        status=status,
        provider_created_at=now,
    )
    try:
        with transaction.atomic():
            job.save()
            guardrails.guardrails_attach(job=job, rules=spec.guardrails)
            audit_record(
                actor=actor, action="run_reported", obj=job, detail={"external_id": external_id}
            )
    except IntegrityError:  # the same run created by a concurrent request: that one stands
        return Job.objects.get(connection=connection, provider_job_id=external_id), False
    except guardrails.GuardrailError as exc:
        raise JobError(exc.message, field=f"guardrails.{exc.field}") from exc
    return job, True


def _writable(job: Job) -> None:
    if traits(job.connection.kind).hosted:
        raise ReportConflict(
            "This run is synced from its provider; only self-hosted runs take reports."
        )


@dataclass(frozen=True)
class Appended:
    points: int  # points in the batch after dropping what cannot be stored
    dropped: int  # values that were not finite numbers


LOSSES = frozenset({"train_loss", "valid_loss", "full_valid_loss"})


def _row(step: int, values: dict[str, Any]) -> tuple[dict[str, Any], int, bool]:
    """The stored row, how many values were dropped, and whether a loss was among them."""
    row: dict[str, Any] = {"step": step, "extra": {}}
    dropped = 0
    lost_loss = False
    for raw_name, value in values.items():
        name = ALIASES.get(raw_name, raw_name)
        if not SERIES_NAME.match(name):
            raise JobError(
                f"“{storable.text(raw_name, 80)}” is not a series name (a letter, then up to 63 "
                "letters, digits, “_”, “.”, “/” or “-”).",
                field="points",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise JobError(f"The value of “{name}” at step {step} is not a number.", field="points")
        if not math.isfinite(value):
            dropped += 1
            lost_loss = lost_loss or name in LOSSES
            continue
        if name in METRIC_COLUMNS:
            row[name] = float(value)
        else:
            row["extra"][name] = float(value)
    return row, dropped, lost_loss


def _estimated_finish(job: Job, now: datetime) -> datetime | None:
    if job.is_terminal or not job.total_steps or not job.last_step or job.started_at is None:
        return None
    remaining = job.total_steps - job.last_step
    if remaining <= 0:
        return None
    per_step = (now - job.started_at) / job.last_step
    return now + per_step * remaining


def _start(job: Job, now: datetime) -> None:
    if job.status in (Job.Status.QUEUED, Job.Status.PENDING):
        job.status = Job.Status.RUNNING
    if job.started_at is None and not job.is_terminal:
        job.started_at = now


SUMMARY_FIELDS = (
    "status", "started_at", "last_step", "final_train_loss", "best_full_valid_loss",
    "best_full_valid_step", "total_steps", "estimated_finish", "trained_tokens",
)  # fmt: skip


def run_metrics_append(*, job: Job, points: list[tuple[int, dict[str, Any]]]) -> Appended:
    """Store a batch of points (step, {series: value}); a batch sent again changes nothing.
    Non-finite values are dropped (a chart cannot draw them) and counted."""
    _writable(job)
    if len(points) > MAX_POINTS:
        raise JobError(f"At most {MAX_POINTS} points per batch.", field="points")
    rows, dropped, non_finite = [], 0, []
    for step, values in points:
        if not 0 <= step <= 2**31 - 1:
            raise JobError(f"Step {step} is out of range.", field="points")
        if len(values) > MAX_SERIES:
            raise JobError(f"At most {MAX_SERIES} series per point.", field="points")
        row, lost, lost_loss = _row(step, values)
        rows.append(row)
        dropped += lost
        if lost_loss:
            non_finite.append(step)
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        metrics.upsert(job.pk, rows)
        _start(job, now)
        metrics.summarise(job)
        tokens = max((r["extra"].get("tokens_seen", 0) for r in rows), default=0)
        if tokens and tokens > (job.trained_tokens or 0):
            job.trained_tokens = storable.int64(tokens)
        job.estimated_finish = _estimated_finish(job, now)
        job.save(update_fields=SUMMARY_FIELDS)
    guardrails.guardrails_evaluate(job_id=job.pk, non_finite_steps=non_finite)
    return Appended(points=len(rows), dropped=dropped)


def run_checkpoint_report(
    *, job: Job, step: int, uri: str, values: dict[str, Any]
) -> tuple[Checkpoint, bool]:
    """Record the checkpoint saved at ``step`` (where it lies; no weights travel). Reported
    again, its location and metrics are updated."""
    _writable(job)
    if not 0 <= step <= 2**31 - 1:
        raise JobError(f"Step {step} is out of range.", field="step")
    clean = {
        k: float(v)
        for k, v in values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }
    checkpoint, created = Checkpoint.objects.update_or_create(
        job=job,
        provider_checkpoint_id=f"step-{step}",
        defaults={
            "step": step,
            "model_name": storable.text(uri, 300) or f"step-{step}",
            "metrics": storable.json_value(clean),
        },
        create_defaults={
            "step": step,
            "model_name": storable.text(uri, 300) or f"step-{step}",
            "metrics": storable.json_value(clean),
            "created_at": timezone.now(),
        },
    )
    return checkpoint, created


@dataclass(frozen=True)
class EventReport:
    message: str
    level: str = "info"
    id: str = ""
    created_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _event_id(event: EventReport, when: datetime) -> str:
    if event.id:
        return storable.text(event.id, 100)
    digest = hashlib.sha256(f"{when.isoformat()}|{event.level}|{event.message}".encode())
    return "ev-" + digest.hexdigest()[:40]


def run_events_append(*, job: Job, events: list[EventReport]) -> int:
    """Store events; one sent again (same id, or without an id the same time, level and
    message) is stored once. Returns how many were new."""
    _writable(job)
    now = timezone.now()
    rows = []
    for event in events:
        if event.level not in ("info", "warn", "error"):
            raise JobError(f"“{event.level}” is not an event level.", field="events")
        when = event.created_at or now
        rows.append(
            JobEvent(
                job=job,
                provider_event_id=_event_id(event, when),
                created_at=when,
                level=event.level,
                type="message",
                message=storable.text(event.message, 10_000),
                data=storable.json_value(event.data) or {},
            )
        )
    before = JobEvent.objects.filter(job=job).count()
    JobEvent.objects.bulk_create(rows, ignore_conflicts=True)
    return JobEvent.objects.filter(job=job).count() - before


def run_status_report(
    *, job: Job, status: str, message: str = "", total_steps: int | None = None
) -> Job:
    """Move the run to ``status``. A finished run keeps its status: the same report again
    changes nothing, a different one is a conflict."""
    _writable(job)
    if status not in STATUSES:
        raise JobError(f"“{status}” is not a status a run can report.", field="status")
    if total_steps is not None and not 0 < total_steps <= 2**31 - 1:
        raise JobError("Total steps must be a positive whole number.", field="total_steps")
    now = timezone.now()
    with transaction.atomic():
        job = Job.objects.select_for_update().select_related("connection").get(pk=job.pk)
        if job.is_terminal:
            if job.status != status:
                raise ReportConflict(
                    f"The run has already {job.get_status_display().lower()}; it cannot become "
                    f"{status}."
                )
            return job
        if total_steps is not None:
            job.total_steps = total_steps
        job.status = status
        if status == Job.Status.RUNNING and job.started_at is None:
            job.started_at = now
        if status in Job.PROVIDER_TERMINAL:
            job.finished_at = now
            job.estimated_finish = None
            if status == Job.Status.FAILED:
                job.error = {"code": "training_failed", "message": storable.text(message, 2000)}
        job.save(
            update_fields=[
                "status", "started_at", "finished_at", "estimated_finish", "error", "total_steps",
            ]
        )  # fmt: skip
        if status == Job.Status.FAILED or (message and status == Job.Status.CANCELLED):
            JobEvent.objects.get_or_create(
                job=job,
                provider_event_id=f"status-{status}",
                defaults={
                    "created_at": now,
                    "level": "error" if status == Job.Status.FAILED else "info",
                    "message": storable.text(message, 10_000) or f"The run {status}.",
                },
            )
        if status in Job.PROVIDER_TERMINAL:
            notifications.notifications_for_terminal(job=job)
    return job


def run_stop_request(*, job: Job, actor: Any) -> bool:
    """Ask a self-hosted run to stop (its script hears it in the API's next reply); True when
    this asked, False when it had been asked already."""
    _writable(job)
    if job.is_terminal:
        raise JobError("The run has already ended.")
    with transaction.atomic():
        asked = bool(
            Job.objects.filter(pk=job.pk, stop_requested_at__isnull=True).update(
                stop_requested_at=timezone.now()
            )
        )
        if asked:
            audit_record(actor=actor, action="run_stop_requested", obj=job)
    return asked
