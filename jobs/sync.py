"""Bringing a job up to date with its provider.

Concurrency: a per-job PostgreSQL advisory lock (session level, so no transaction is held
while talking to the provider) lets one sync run at a time; everything written is an upsert
keyed by provider ids or (job, step), so even overlapping or repeated syncs store each event,
checkpoint and metric exactly once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from jobs import metrics, notifications
from jobs.connections import provider_for_connection
from jobs.locks import AdvisoryLock
from jobs.models import Checkpoint, Job, JobEvent, MetricPoint
from jobs.providers import CheckpointInfo, EventInfo, JobInfo, NotFoundError, ProviderError

log = logging.getLogger(__name__)
SYNC_LOCK = "jobs.sync"
EVENT_PAGE = 100
SYNC_FIELDS = (
    "status", "model", "hyperparameters", "fine_tuned_model", "trained_tokens",
    "estimated_finish", "error", "result_files", "provider_created_at", "finished_at",
    "started_at", "last_event_id", "total_steps", "last_step", "final_train_loss",
    "best_full_valid_loss", "best_full_valid_step", "last_synced_at", "last_sync_error",
    "poll_failures", "next_poll_at",
)  # fmt: skip
MAX_BACKOFF = timedelta(minutes=15)


def _ts(value: float | int | None) -> datetime | None:
    return datetime.fromtimestamp(value, tz=UTC) if value else None


@dataclass
class Fetched:
    info: JobInfo
    events: list[EventInfo] = field(default_factory=list)  # newest first, only new ones
    checkpoints: list[CheckpointInfo] | None = None
    results_csv: str | None = None


def _fetch(job: Job, *, full: bool = False) -> Fetched:
    """What changed at the provider. ``full`` (imports) always lists the checkpoints and reads
    the results file of a finished job, whatever the stored status already says."""
    provider = provider_for_connection(job.connection)
    fetched = Fetched(info=provider.retrieve_job(job.provider_job_id))
    after: str | None = None
    while True:
        page = provider.list_events(job.provider_job_id, after=after, limit=EVENT_PAGE)
        reached_known = False
        for event in page.data:
            if event.id == job.last_event_id:
                reached_known = True
                break
            fetched.events.append(event)
        if reached_known or not page.has_more or not page.data:
            break
        after = page.data[-1].id
    terminal = fetched.info.status in Job.PROVIDER_TERMINAL
    changed = full or job.status != fetched.info.status
    if fetched.events or (terminal and changed):
        fetched.checkpoints = []
        after = None
        while True:
            ckpts = provider.list_checkpoints(job.provider_job_id, after=after, limit=100)
            fetched.checkpoints.extend(ckpts.data)
            if not ckpts.has_more or not ckpts.data:
                break
            after = ckpts.data[-1].id
    if terminal and fetched.info.result_files and changed:
        try:
            fetched.results_csv = provider.download_results_csv(fetched.info.result_files[0])
        except NotFoundError:
            log.info("results file of %s is no longer served", job.pk)
    return fetched


def _started_at(job: Job, events: list[EventInfo]) -> datetime | None:
    if job.started_at:
        return job.started_at
    chronological = sorted(events, key=lambda e: e.created_at)
    for event in chronological:
        if event.message.startswith("Fine-tuning job started") or event.type == "metrics":
            return _ts(event.created_at)
    return None


def _store(job: Job, fetched: Fetched) -> None:
    info = fetched.info
    now = timezone.now()
    previous_status = job.status
    rows = [
        r
        for e in fetched.events
        if e.type == "metrics"
        for r in [metrics.row_from_mapping(e.data)]
        if r
    ]
    if fetched.results_csv:
        rows += metrics.rows_from_csv(fetched.results_csv)
    total_steps = max(
        (
            int(e.data["total_steps"])
            for e in fetched.events
            if isinstance(e.data.get("total_steps"), int | float)
        ),
        default=None,
    )
    with transaction.atomic():
        JobEvent.objects.bulk_create(
            [
                JobEvent(
                    job=job,
                    provider_event_id=e.id,
                    created_at=_ts(e.created_at) or now,
                    level=e.level or "info",
                    type=e.type or "message",
                    message=e.message or "",
                    data=e.data or {},
                )
                for e in reversed(fetched.events)
            ],
            ignore_conflicts=True,
            batch_size=1000,
        )
        metrics.upsert(job.pk, rows)
        if fetched.checkpoints is not None:
            Checkpoint.objects.bulk_create(
                [
                    Checkpoint(
                        job=job,
                        provider_checkpoint_id=c.id,
                        step=c.step_number,
                        model_name=c.fine_tuned_model_checkpoint,
                        metrics=c.metrics,
                        created_at=_ts(c.created_at) or now,
                    )
                    for c in fetched.checkpoints
                ],
                update_conflicts=True,
                unique_fields=["job", "provider_checkpoint_id"],
                update_fields=["metrics", "step", "model_name"],
            )
        job.status = info.status
        job.model = info.model or job.model
        job.hyperparameters = info.hyperparameters or job.hyperparameters
        job.fine_tuned_model = info.fine_tuned_model or job.fine_tuned_model
        job.trained_tokens = (
            info.trained_tokens if info.trained_tokens is not None else job.trained_tokens
        )
        job.estimated_finish = _ts(info.estimated_finish)
        job.error = (
            {"code": info.error.code, "message": info.error.message, "param": info.error.param}
            if info.error
            else None
        )
        job.result_files = info.result_files
        job.provider_created_at = job.provider_created_at or _ts(info.created_at)
        job.finished_at = _ts(info.finished_at) or (
            job.finished_at if info.status in Job.PROVIDER_TERMINAL else None
        )
        if info.status in Job.PROVIDER_TERMINAL and job.finished_at is None:
            job.finished_at = now
        job.started_at = _started_at(job, fetched.events)
        if fetched.events:
            job.last_event_id = fetched.events[0].id
        if total_steps:
            job.total_steps = total_steps
        _summarise(job)
        job.last_synced_at = now
        job.last_sync_error = ""
        job.poll_failures = 0
        if info.status in Job.PROVIDER_TERMINAL:
            # Synced once more after the terminal state is first seen, then left alone.
            job.next_poll_at = None if previous_status == info.status else now + _interval()
        else:
            job.next_poll_at = now + _interval()
        # Only what a sync owns: names, notes and tags edited meanwhile are kept.
        job.save(update_fields=SYNC_FIELDS)
        if info.status in Job.PROVIDER_TERMINAL:
            notifications.notifications_for_terminal(job=job)


def _summarise(job: Job) -> None:
    points = MetricPoint.objects.filter(job=job)
    last = (
        points.exclude(train_loss__isnull=True)
        .order_by("-step")
        .values("step", "train_loss")
        .first()
    )
    if last:
        job.last_step = last["step"]
        job.final_train_loss = last["train_loss"]
    best = (
        points.exclude(full_valid_loss__isnull=True)
        .order_by("full_valid_loss", "step")
        .values("step", "full_valid_loss")
        .first()
    )
    if best:
        job.best_full_valid_loss = best["full_valid_loss"]
        job.best_full_valid_step = best["step"]
    if job.total_steps is None:
        job.total_steps = points.aggregate(Max("step"))["step__max"]


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
    # The provider failure behind ``error``, so callers (imports) can tell transient ones.
    exception: ProviderError | None = field(default=None, compare=False)


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
        try:
            fetched = _fetch(job, full=full)
        except NotFoundError as exc:
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.LOST,
                next_poll_at=None,
                last_sync_error=str(exc),
                last_synced_at=timezone.now(),
            )
            return SyncOutcome(ran=True, status=Job.Status.LOST, error=str(exc), exception=exc)
        except ProviderError as exc:
            failures = job.poll_failures + 1
            Job.objects.filter(pk=job.pk).update(
                poll_failures=failures,
                next_poll_at=timezone.now() + _backoff(failures),
                last_sync_error=str(exc)[:1000],
            )
            return SyncOutcome(ran=True, status=job.status, error=str(exc), exception=exc)
        _store(job, fetched)
        return SyncOutcome(ran=True, status=job.status, new_events=len(fetched.events))


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
