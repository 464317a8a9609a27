"""Leases on pieces of background work (a dataset validation, a launch, an import, an evaluation).

A work row carries ``lease_owner`` (who works on it now; "" while it waits in the queue),
``lease_expires_at`` (by when its owner must renew, or a queued piece must be claimed) and
``lease_heartbeat_at`` (the last sign of progress). A worker claims a row with a conditional
UPDATE that only succeeds when the row is free, its lease expired, or its owner is dead.

Who is dead. An owner is a PostgreSQL session: each session that claims work takes a
session-level advisory lock on a random key of its own, and the owner id names that key. The
server drops the lock the moment the session ends, which is when its process dies (``kill -9``,
the OOM killer, a hard time limit), on whatever machine it ran. So "the owner's lock is no
longer held" is a sound death certificate, not a guess from elapsed time; the expiry only
covers owners that are alive but stuck (or whose session hid behind a network partition).

The apps register their kinds of work (``register``) in ``AppConfig.ready()``; the reaper and
the health check here walk the registry, so this module imports no app.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

# The owner lock's key is a random 62-bit number: positive in a bigint, and as PostgreSQL
# shows it in pg_locks (classid = high 32 bits, objid = low 32 bits, objsubid = 1).
_KEY_BITS = 62


# --- owners -------------------------------------------------------------------------------------


class _Session(threading.local):
    raw: Any = None
    owner: str = ""


_session = _Session()


def lease_owner() -> str:
    """This database session's owner id, ``<key>@<host>/<pid>``, holding its owner lock.

    A new session (Django reconnected, a forked process, another thread) gets a new id: work
    claimed by the old one is then, rightly, work of a dead owner."""
    connection.ensure_connection()
    raw = connection.connection
    if _session.raw is not raw or not _session.owner:
        key = secrets.randbits(_KEY_BITS)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        _session.raw = raw
        _session.owner = f"{key:x}@{socket.gethostname()}/{os.getpid()}"[:200]
    return _session.owner


def _owner_key(owner: str) -> int | None:
    head = owner.split("@", 1)[0]
    try:
        return int(head, 16) if "@" in owner else None
    except ValueError:
        return None


def owners_alive(owners: Iterable[str]) -> set[str]:
    """The owners among ``owners`` whose session is still there. An owner id this module did
    not make counts as alive (its expiry decides)."""
    wanted = {owner: _owner_key(owner) for owner in owners if owner}
    keys = {key for key in wanted.values() if key is not None}
    held: set[int] = set()
    if keys:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks"
                " WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
                " AND ((classid::bigint << 32) | objid::bigint) = ANY(%s)",
                [list(keys)],
            )
            held = {row[0] for row in cursor.fetchall()}
    return {owner for owner, key in wanted.items() if key is None or key in held}


def owner_describe(owner: str) -> str:
    """``host/pid`` of an owner id, for people."""
    return owner.split("@", 1)[1] if "@" in owner else owner


# --- claiming, renewing, releasing ------------------------------------------------------------


def lease_seconds() -> float:
    return float(settings.WORK_LEASE_SECONDS)


def held_fields(*, seconds: float | None = None) -> dict[str, Any]:
    """The columns that say "this session works on it", to add to an UPDATE the worker makes
    anyway (progress, counters): renewing costs no extra statement."""
    now = timezone.now()
    return {
        "lease_owner": lease_owner(),
        "lease_expires_at": now + timedelta(seconds=seconds or lease_seconds()),
        "lease_heartbeat_at": now,
    }


def queued_fields(*, delay: float = 0.0) -> dict[str, Any]:
    """The columns of work waiting in the queue: nobody holds it, and it must be claimed
    within a lease (after ``delay``, for a retry) or the reaper sends it again."""
    now = timezone.now()
    return {
        "lease_owner": "",
        "lease_expires_at": now + timedelta(seconds=delay + lease_seconds()),
        "lease_heartbeat_at": now,
    }


def done_fields() -> dict[str, Any]:
    return {"lease_owner": "", "lease_expires_at": None}


def lease_claim(queryset: QuerySet[Any], *, seconds: float | None = None, **fields: Any) -> bool:
    """Claim the row(s) of ``queryset`` (one row: filter by pk and by the states in which the
    work may be taken) for this session, writing ``fields`` too. True when claimed: the row
    was free (queued), its lease had expired, it was this session's, or its owner is dead.
    "Somebody alive holds it" is a normal outcome (False), not an error."""
    me = lease_owner()
    now = timezone.now()
    values = {**fields, **held_fields(seconds=seconds)}
    takeable = (
        Q(lease_owner="")
        | Q(lease_owner=me)
        | Q(lease_expires_at__isnull=True)
        | Q(lease_expires_at__lt=now)
    )
    if queryset.filter(takeable).update(**values):
        return True
    holders = set(queryset.exclude(lease_owner="").values_list("lease_owner", flat=True))
    for dead in holders - owners_alive(holders):
        # Compare-and-swap on the dead owner: of several claimers, one wins.
        if queryset.filter(lease_owner=dead).update(**values):
            return True
    return False


def lease_renew(queryset: QuerySet[Any], *, seconds: float | None = None, **fields: Any) -> bool:
    """Extend this session's lease (with ``fields``); False once someone else took it over."""
    return bool(
        queryset.filter(lease_owner=lease_owner()).update(**fields, **held_fields(seconds=seconds))
    )


# --- kinds of work, the reaper and the health check ----------------------------------------------


@dataclass(frozen=True)
class WorkKind:
    """A kind of leased work an app registers.

    ``active`` is every row that is not finished (queued or being worked on); ``task`` and
    ``task_args`` send the task that (re)starts one. ``time_limit`` is how long a row may go
    without a sign of progress before the health check calls it stuck."""

    name: str
    label: str
    active: Callable[[], QuerySet[Any]]
    task: str
    task_args: Callable[[Any], Sequence[Any]]
    describe: Callable[[Any], str] = str
    time_limit: Callable[[], float] = lambda: float(settings.CELERY_TASK_TIME_LIMIT)


_KINDS: dict[str, WorkKind] = {}


def register(kind: WorkKind) -> None:
    _KINDS[kind.name] = kind


def kinds() -> list[WorkKind]:
    return list(_KINDS.values())


@dataclass(frozen=True)
class Requeued:
    kind: str
    pk: Any
    reason: str  # "expired" or "owner dead"


def work_reap(*, send: Callable[[str, Sequence[Any]], None]) -> list[Requeued]:
    """Send again every piece of work whose lease expired or whose owner is dead.

    Each row is first moved on with a compare-and-swap (a dead owner is cleared, the expiry is
    pushed a lease ahead), so two reapers, or one running every few seconds, send each piece
    once per lease. The task then claims it as usual: work still in good hands is left alone."""
    requeued: list[Requeued] = []
    for kind in kinds():
        now = timezone.now()
        rows = list(
            kind.active()
            .filter(
                Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now) | ~Q(lease_owner="")
            )
            .order_by()
        )
        alive = owners_alive({row.lease_owner for row in rows})
        for row in rows:
            dead = bool(row.lease_owner) and row.lease_owner not in alive
            expired = row.lease_expires_at is None or row.lease_expires_at < now
            if not (dead or expired):
                continue
            moved = (
                kind.active()
                .filter(
                    pk=row.pk,
                    lease_owner=row.lease_owner,
                    lease_expires_at=row.lease_expires_at,
                )
                .update(
                    lease_owner="" if dead else row.lease_owner,
                    lease_expires_at=now + timedelta(seconds=lease_seconds()),
                    # The clock of "stuck" starts at the first request, not at each resend.
                    lease_heartbeat_at=row.lease_heartbeat_at or now,
                )
            )
            if moved:
                send(kind.task, kind.task_args(row))
                requeued.append(Requeued(kind.name, row.pk, "owner dead" if dead else "expired"))
    return requeued


@dataclass(frozen=True)
class StuckWork:
    kind: str
    label: str
    pk: Any
    description: str
    owner: str
    last_progress: datetime | None
    seconds: float


def work_stuck(*, limit: int = 20) -> list[StuckWork]:
    """Unfinished work that has shown no progress for longer than its time limit: nobody took
    it up again after a crash, or its worker hangs."""
    stuck: list[StuckWork] = []
    now = timezone.now()
    for kind in kinds():
        cutoff = now - timedelta(seconds=kind.time_limit())
        rows = (
            kind.active()
            .filter(Q(lease_heartbeat_at__lt=cutoff))
            .order_by("lease_heartbeat_at")[:limit]
        )
        for row in rows:
            seen = row.lease_heartbeat_at
            stuck.append(
                StuckWork(
                    kind=kind.name,
                    label=kind.label,
                    pk=row.pk,
                    description=kind.describe(row)[:200],
                    owner=owner_describe(row.lease_owner),
                    last_progress=seen,
                    seconds=(now - seen).total_seconds() if seen else 0.0,
                )
            )
    return stuck
