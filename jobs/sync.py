"""Bringing a job up to date with its provider.

Concurrency: a per-job PostgreSQL advisory lock (session level, so no transaction is held
while talking to the provider) lets one sync run at a time; everything written is an upsert
keyed by provider ids or (job, step), so even overlapping or repeated syncs store each event,
checkpoint and metric exactly once.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from jobs import guardrails, metrics, notifications, storable, sweep_queue, watching
from jobs.connections import provider_for_connection
from jobs.locks import AdvisoryLock
from jobs.models import Checkpoint, Job, JobEvent
from jobs.providers import CheckpointInfo, EventInfo, JobInfo, NotFoundError, ProviderError
from jobs.providers.paging import PageBudget, paginate

log = logging.getLogger(__name__)
SYNC_LOCK = "jobs.sync"
EVENT_PAGE = 100
SYNC_FIELDS = (
    "status", "provider_status", "model", "hyperparameters", "fine_tuned_model", "trained_tokens",
    "estimated_finish", "error", "result_files", "provider_created_at", "finished_at",
    "started_at", "last_event_id", "total_steps", "last_step", "final_train_loss",
    "best_full_valid_loss", "best_full_valid_step", "last_synced_at", "last_sync_error",
    "poll_failures", "next_poll_at",
)  # fmt: skip
MAX_BACKOFF = timedelta(minutes=15)
CKPT_STEP = re.compile(r"ckpt-step-(\d+)$")


def _length(model: Any, name: str) -> int:
    return int(model._meta.get_field(name).max_length)


STATUS_LENGTH = _length(Job, "status")
MODEL_LENGTH = _length(Job, "model")
EVENT_ID_LENGTH = _length(JobEvent, "provider_event_id")
LEVEL_LENGTH = _length(JobEvent, "level")
TYPE_LENGTH = _length(JobEvent, "type")
CHECKPOINT_ID_LENGTH = _length(Checkpoint, "provider_checkpoint_id")
CHECKPOINT_MODEL_LENGTH = _length(Checkpoint, "model_name")


@dataclass
class Fetched:
    info: JobInfo
    events: list[EventInfo] = field(default_factory=list)  # newest first, only new ones
    checkpoints: list[CheckpointInfo] | None = None
    results_csv: str | None = None
    # From a provider that serves metrics on their own endpoint (``Provider.list_metrics``).
    metrics: list[dict[str, float]] = field(default_factory=list)


def _fetch(job: Job, *, full: bool = False) -> Fetched:
    """What changed at the provider. ``full`` (imports) always lists the checkpoints and reads
    the results file of a finished job, whatever the stored status already says.

    Only a 404 on the job itself means the provider lost it (``NotFoundError`` escapes from
    here for that alone); a list or file the provider does not serve for a job it still knows
    is skipped, and what is stored of it is kept."""
    provider = provider_for_connection(job.connection)
    job_id = job.provider_job_id or ""
    budget = PageBudget(settings.SYNC_MAX_PAGES)
    fetched = Fetched(info=provider.retrieve_job(job_id))
    try:
        for event in paginate(
            lambda after: provider.list_events(job_id, after=after, limit=EVENT_PAGE),
            what=f"events of {job_id}",
            budget=budget,
        ):
            if storable.text(event.id, EVENT_ID_LENGTH) == job.last_event_id:
                break
            fetched.events.append(event)
    except NotFoundError:
        # Nothing of a partial list is kept: the cursor (last_event_id) would skip the rest.
        log.info("the provider serves no events for %s", job_id)
        fetched.events = []
    terminal = fetched.info.status in Job.PROVIDER_TERMINAL
    changed = full or job.status != fetched.info.status
    if not terminal or changed or fetched.events:
        try:
            fetched.metrics = provider.list_metrics(
                job_id, after_step=None if full else job.last_step
            )
        except NotFoundError:
            log.info("the provider serves no metrics for %s", job_id)
    if fetched.events or (terminal and changed):
        try:
            fetched.checkpoints = list(
                paginate(
                    lambda after: provider.list_checkpoints(job_id, after=after, limit=100),
                    what=f"checkpoints of {job_id}",
                    budget=budget,
                )
            )
        except NotFoundError:
            log.info("the provider serves no checkpoints for %s", job_id)
    if terminal and fetched.info.result_files and changed:
        try:
            fetched.results_csv = provider.download_results_csv(fetched.info.result_files[0])
        except NotFoundError:
            log.info("results file of %s is no longer served", job.pk)
    return fetched


def _event_rows(job: Job, fetched: Fetched, now: datetime) -> list[JobEvent]:
    """Oldest first. An event without a time gets the time of the event before it, so it
    keeps its place in the timeline instead of showing as the newest."""
    rows: list[JobEvent] = []
    previous: datetime | None = None
    for event in reversed(fetched.events):
        created = storable.timestamp(event.created_at)
        if created is None:
            if previous is None:
                previous = (
                    JobEvent.objects.filter(job=job).aggregate(Max("created_at"))["created_at__max"]
                    or job.provider_created_at
                    or storable.timestamp(fetched.info.created_at)
                    or now
                )
            created = previous
        previous = created
        data = storable.json_value(event.data)
        rows.append(
            JobEvent(
                job=job,
                provider_event_id=storable.text(event.id, EVENT_ID_LENGTH),
                created_at=created,
                level=storable.text(event.level, LEVEL_LENGTH) or "info",
                type=storable.text(event.type, TYPE_LENGTH) or "message",
                message=storable.text(event.message),
                data=data if isinstance(data, dict) else {},
            )
        )
    return rows


def _checkpoint_step(checkpoint: CheckpointInfo) -> int | None:
    """``step_number``, else the step its metrics name, else the one in its model name
    (``…:ckpt-step-88``)."""
    step = storable.int32(checkpoint.step_number)
    if step is None:
        step = storable.int32(checkpoint.metrics.get("step"))
    if step is None:
        match = CKPT_STEP.search(checkpoint.fine_tuned_model_checkpoint or "")
        step = storable.int32(int(match.group(1))) if match else None
    return step


def _checkpoint_rows(
    job: Job, checkpoints: list[CheckpointInfo], now: datetime
) -> list[Checkpoint]:
    """One row per checkpoint id (a provider may list one twice; one upsert may not touch a
    row twice)."""
    rows: dict[str, Checkpoint] = {}
    for checkpoint in checkpoints:
        step = _checkpoint_step(checkpoint)
        if step is None:
            # Nowhere to put it on a chart or in a list ordered by step; the step is all
            # that places a checkpoint, so it waits for a provider answer that names it.
            log.warning("checkpoint %s of %s names no step: skipped", checkpoint.id, job.pk)
            continue
        provider_id = storable.text(checkpoint.id, CHECKPOINT_ID_LENGTH)
        rows[provider_id] = Checkpoint(
            job=job,
            provider_checkpoint_id=provider_id,
            step=step,
            model_name=storable.text(
                checkpoint.fine_tuned_model_checkpoint, CHECKPOINT_MODEL_LENGTH
            ),
            metrics=storable.json_value(checkpoint.metrics),
            created_at=storable.timestamp(checkpoint.created_at) or now,
        )
    return list(rows.values())


def _started_at(job: Job, events: list[JobEvent]) -> datetime | None:
    if job.started_at:
        return job.started_at
    for event in events:  # oldest first
        if event.message.startswith("Fine-tuning job started") or event.type == "metrics":
            return event.created_at
    return None


def _total_steps(events: list[JobEvent]) -> int | None:
    steps = [storable.int32(e.data.get("total_steps")) for e in events if isinstance(e.data, dict)]
    return max((s for s in steps if s is not None and s > 0), default=None)


def _non_finite_steps(fetched: Fetched) -> list[int]:
    """The steps whose loss came as NaN or infinity, read from the provider's answers as they
    came (the stored events and rows keep no such value)."""
    reports: list[Any] = [e.data for e in fetched.events if e.type == "metrics"]
    if fetched.results_csv:
        reports += metrics.csv_mappings(fetched.results_csv)
    reports += [m for m in fetched.metrics if isinstance(m, dict)]
    steps = {metrics.non_finite_loss_step(r) for r in reports}
    return sorted(s for s in steps if s is not None)


def _store(job: Job, fetched: Fetched) -> list[int]:
    """Store what the provider reported; returns the steps whose loss was NaN or infinite."""
    info = fetched.info
    now = timezone.now()
    previous_status = job.status
    status = storable.text(info.status, STATUS_LENGTH) or "unknown"
    events = _event_rows(job, fetched, now)
    rows = [
        r for e in events if e.type == "metrics" for r in [metrics.row_from_mapping(e.data)] if r
    ]
    if fetched.results_csv:
        rows += metrics.rows_from_csv(fetched.results_csv)
    rows += [r for r in map(metrics.row_from_mapping, fetched.metrics) if r]
    total_steps = _total_steps(events)
    non_finite = _non_finite_steps(fetched)
    with transaction.atomic():
        JobEvent.objects.bulk_create(events, ignore_conflicts=True, batch_size=1000)
        metrics.upsert(job.pk, rows)
        if fetched.checkpoints is not None:
            listed = _checkpoint_rows(job, fetched.checkpoints, now)
            Checkpoint.objects.bulk_create(
                listed,
                update_conflicts=True,
                unique_fields=["job", "provider_checkpoint_id"],
                update_fields=["metrics", "step", "model_name"],
            )
            # The list is complete (paging fails rather than stops short): a checkpoint no
            # longer in it was deleted at the provider and cannot be called any more.
            Checkpoint.objects.filter(job=job, deleted_at__isnull=True).exclude(
                provider_checkpoint_id__in=[c.provider_checkpoint_id for c in listed]
            ).update(deleted_at=now)
        terminal = status in Job.PROVIDER_TERMINAL
        job.status = status
        job.provider_status = storable.text(info.provider_status, STATUS_LENGTH) or ""
        job.model = storable.text(info.model, MODEL_LENGTH) or job.model
        job.hyperparameters = storable.json_value(info.hyperparameters) or job.hyperparameters
        job.fine_tuned_model = (
            storable.text(info.fine_tuned_model, MODEL_LENGTH) or job.fine_tuned_model
        )
        trained_tokens = storable.int64(info.trained_tokens)
        job.trained_tokens = trained_tokens if trained_tokens is not None else job.trained_tokens
        job.estimated_finish = storable.timestamp(info.estimated_finish)
        job.error = (
            storable.json_value(
                {"code": info.error.code, "message": info.error.message, "param": info.error.param}
            )
            if info.error
            else None
        )
        job.result_files = storable.json_value(info.result_files)
        job.provider_created_at = job.provider_created_at or storable.timestamp(info.created_at)
        job.finished_at = storable.timestamp(info.finished_at) or (
            job.finished_at if terminal else None
        )
        if terminal and job.finished_at is None and previous_status not in Job.PROVIDER_TERMINAL:
            # Seen finishing just now, and the provider gave no time: now is close. A job
            # first seen finished (an import) keeps no finish time rather than an invented one.
            job.finished_at = now
        job.started_at = _started_at(job, events) or storable.timestamp(info.started_at)
        if fetched.events:
            job.last_event_id = storable.text(fetched.events[0].id, EVENT_ID_LENGTH)
        if total_steps:
            job.total_steps = total_steps
        metrics.summarise(job)
        job.last_synced_at = now
        job.last_sync_error = ""
        job.poll_failures = 0
        if terminal:
            # Synced once more after the terminal state is first seen, then left alone.
            job.next_poll_at = None if previous_status == status else now + _interval()
        else:
            # Unknown statuses too: a job the provider has not called finished is followed,
            # quickly while someone has its page open.
            job.next_poll_at = now + watching.next_poll_delay(job, now=now)
        # Only what a sync owns: names, notes and tags edited meanwhile are kept.
        job.save(update_fields=SYNC_FIELDS)
        if terminal:
            notifications.notifications_for_terminal(job=job)
    return non_finite


def _interval() -> timedelta:
    return timedelta(seconds=settings.POLL_INTERVAL)


def _backoff(failures: int) -> timedelta:
    base = settings.POLL_INTERVAL * (2 ** min(failures, 10))
    return min(MAX_BACKOFF, timedelta(seconds=base * random.uniform(0.8, 1.2)))  # noqa: S311


@dataclass(frozen=True)
class SyncOutcome:
    ran: bool
    status: str
    new_events: int = 0
    error: str = ""
    # The failure behind ``error``, so callers (imports) can tell transient ones.
    exception: Exception | None = field(default=None, compare=False)


def job_sync(*, job_id: Any, full: bool = False) -> SyncOutcome:
    job = Job.objects.select_related("connection").get(pk=job_id)
    if not job.provider_job_id or job.status in ("lost",):
        return SyncOutcome(ran=False, status=job.status)
    if not job.connection.usable:
        Job.objects.filter(pk=job.pk).update(next_poll_at=None)
        return SyncOutcome(ran=False, status=job.status, error="connection unusable")
    with AdvisoryLock(SYNC_LOCK, job.pk) as held:
        if not held:
            return SyncOutcome(ran=False, status=job.status)
        job.refresh_from_db()
        # As stored: _store changes the instance before a failure may roll its save back.
        status, failures = job.status, job.poll_failures
        try:
            fetched = _fetch(job, full=full)
            non_finite = _store(job, fetched)
        except NotFoundError as exc:  # the job itself: _fetch skips lists it is not served
            message = storable.text(exc, 1000)
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.LOST,
                next_poll_at=None,
                last_sync_error=message,
                last_synced_at=timezone.now(),
            )
            return SyncOutcome(ran=True, status=Job.Status.LOST, error=message, exception=exc)
        except Exception as exc:
            return _failed(job, exc, status=status, failures=failures + 1)
        # On what was just stored; a firing is stored once however often syncs run.
        guardrails.guardrails_evaluate(job_id=job.pk, non_finite_steps=non_finite)
        sweep_queue.sweep_job_settled(job=job)
        return SyncOutcome(ran=True, status=job.status, new_events=len(fetched.events))


def _failed(job: Job, exc: Exception, *, status: str, failures: int) -> SyncOutcome:
    """Whatever broke the sync (the provider, an answer nothing could store, a bug) is shown
    on the job, and the next poll backs off the same way."""
    if isinstance(exc, ProviderError):
        message = str(exc)
    else:
        log.exception("sync of job %s failed", job.pk)
        message = f"Unexpected error ({type(exc).__name__}): {exc}"
    message = storable.text(message, 1000)
    Job.objects.filter(pk=job.pk).update(
        poll_failures=failures,
        next_poll_at=timezone.now() + _backoff(failures),
        last_sync_error=message,
    )
    if isinstance(exc, SoftTimeLimitExceeded):
        raise exc  # recorded; the task (or the import's step) still has to stop
    return SyncOutcome(ran=True, status=status, error=message, exception=exc)


def jobs_claim_due(*, limit: int = 500) -> list[str]:
    """Claim jobs whose poll is due, pushing their next poll out by a lease so the next beat
    does not enqueue them again while their sync waits in the queue."""
    lease = timezone.now() + timedelta(seconds=max(60, settings.POLL_INTERVAL * 4))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE jobs_job SET next_poll_at = %s
            WHERE id IN (
                SELECT id FROM jobs_job
                WHERE next_poll_at IS NOT NULL AND next_poll_at <= %s
                ORDER BY next_poll_at
                LIMIT %s
                FOR UPDATE SKIP LOCKED
            )
            RETURNING id
            """,
            [lease, timezone.now(), limit],
        )
        return [str(row[0]) for row in cursor.fetchall()]
