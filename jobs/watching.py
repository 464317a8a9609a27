"""Quick syncs for jobs someone is watching (issue 14, item 5).

While a job's page is open its live JSON is polled; each poll marks the job watched until
``JOB_WATCH_SECONDS`` from now (``job_watch``). A sync of a watched, active job schedules the
next one ``WATCHED_POLL_INTERVAL`` seconds later instead of ``POLL_INTERVAL``, if the
connection's budget allows it (``connection_quick_sync_take``): at most
``WATCHED_SYNC_LIMIT`` quick syncs per connection in a fixed window of
``WATCHED_SYNC_WINDOW`` seconds, counted by one conditional UPDATE, so any number of open
pages and web processes cannot push a provider past its rate limits. Once nobody polls, the
watch lapses and the job is back on the normal interval."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection as db
from django.db.models import Q

from jobs.models import Job


def connection_quick_sync_take(*, connection_id: int, now: datetime) -> bool:
    """Take one quick sync from the connection's budget for the window ``now`` falls in; False
    when the window's budget is spent (the caller uses the normal interval)."""
    limit = settings.WATCHED_SYNC_LIMIT
    if limit <= 0:
        return False
    window_start = now - timedelta(seconds=settings.WATCHED_SYNC_WINDOW)
    with db.cursor() as cursor:
        # A window that has ended starts a new one at ``now`` with this sync counted.
        cursor.execute(
            """
            UPDATE jobs_providerconnection SET
                watch_window_started_at = CASE
                    WHEN watch_window_started_at IS NULL OR watch_window_started_at <= %(start)s
                    THEN %(now)s ELSE watch_window_started_at END,
                watch_window_syncs = CASE
                    WHEN watch_window_started_at IS NULL OR watch_window_started_at <= %(start)s
                    THEN 1 ELSE watch_window_syncs + 1 END
            WHERE id = %(id)s AND (
                watch_window_started_at IS NULL OR watch_window_started_at <= %(start)s
                OR watch_window_syncs < %(limit)s
            )
            """,
            {"id": connection_id, "now": now, "start": window_start, "limit": limit},
        )
        return cursor.rowcount == 1


def next_poll_delay(job: Job, *, now: datetime) -> timedelta:
    """When an active job that was just synced is polled again: soon while it is watched and
    the connection's budget allows, else after the normal interval."""
    watched = job.watched_until is not None and job.watched_until > now
    if watched and connection_quick_sync_take(connection_id=job.connection_id, now=now):
        return timedelta(seconds=min(settings.WATCHED_POLL_INTERVAL, settings.POLL_INTERVAL))
    return timedelta(seconds=settings.POLL_INTERVAL)


def job_watch(*, job_id: Any, now: datetime) -> None:
    """Someone has the job's page open. The watch is renewed only when half of it has passed
    (a write every ~JOB_WATCH_SECONDS/2, not on every poll); a watch that starts pulls the
    job's next poll in to now, within the connection's budget, unless the job is between a
    claim and its sync (lease) or backing off after failures."""
    until = now + timedelta(seconds=settings.JOB_WATCH_SECONDS)
    renew_before = now + timedelta(seconds=settings.JOB_WATCH_SECONDS / 2)
    active = Job.objects.filter(pk=job_id, next_poll_at__isnull=False)
    started = active.filter(Q(watched_until__isnull=True) | Q(watched_until__lte=now)).update(
        watched_until=until
    )
    if not started:
        active.filter(watched_until__lt=renew_before).update(watched_until=until)
        return
    normal = active.filter(
        poll_failures=0,
        next_poll_at__gt=now + timedelta(seconds=settings.WATCHED_POLL_INTERVAL),
        next_poll_at__lte=now + timedelta(seconds=settings.POLL_INTERVAL),
    )
    connection_id = normal.values_list("connection_id", flat=True).first()
    if connection_id is not None and connection_quick_sync_take(
        connection_id=connection_id, now=now
    ):
        normal.update(next_poll_at=now)
