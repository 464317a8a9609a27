from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core import healthchecks, leases
from core.models import ApiToken, Heartbeat, TaskProbe

# How long /healthz waits for a worker to answer a ping when the heartbeat task is late.
PING_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Health:
    healthy: bool
    checks: dict[str, dict[str, Any]]


def _check_database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"; the message is the evidence
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _check_broker() -> dict[str, Any]:
    # The project's app (config.celery), current since settings loaded the config package.
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:  # kombu raises transport-specific errors
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _heartbeat(name: str) -> dict[str, Any]:
    beat = Heartbeat.objects.filter(name=name).first()
    if beat is None:
        return {"ok": False, "error": "no heartbeat recorded yet", "last_seen": None}
    age = (timezone.now() - beat.last_seen).total_seconds()
    return {
        "ok": age <= settings.HEARTBEAT_STALE_AFTER.total_seconds(),
        "last_seen": beat.last_seen.isoformat(),
        "age_seconds": round(age, 1),
    }


def _check_beat(database_ok: bool) -> dict[str, Any]:
    """Beat records its own ticks: busy workers cannot make it look dead."""
    if not database_ok:
        return {"ok": False, "error": "database unavailable"}
    return _heartbeat("beat")


def _waiting(queue: str) -> int | None:
    from celery import current_app

    try:
        with current_app.connection_for_write() as conn:
            channel: Any = conn.default_channel
            return int(channel.queue_declare(queue).message_count)
    except Exception:  # kombu raises transport-specific errors; the broker check reports them
        return None


def _workers_answering(queue: str) -> list[str]:
    """Workers consuming ``queue`` that answer now. A worker's main process answers control
    messages even while every one of its pool processes is busy."""
    from celery import current_app

    try:
        replies = current_app.control.inspect(timeout=PING_TIMEOUT_SECONDS).active_queues()
    except Exception:  # the broker check reports a broker that is away
        return []
    return sorted(
        name
        for name, queues in (replies or {}).items()
        if any(q.get("name") == queue for q in queues or [])
    )


def _check_workers(database_ok: bool, broker_ok: bool) -> dict[str, Any]:
    """Workers take tasks when beat's heartbeat task ran lately. When it is late, tell busy
    workers (they still answer a ping; the task waits behind others) from no worker at all."""
    if not database_ok:
        return {"ok": False, "error": "database unavailable"}
    check = _heartbeat("worker")
    if check["ok"] or not broker_ok:
        return check
    answering = _workers_answering(settings.CELERY_TASK_DEFAULT_QUEUE)
    waiting = _waiting(settings.CELERY_TASK_DEFAULT_QUEUE)
    check["waiting"] = waiting
    # A count, not names: /healthz is public and host names are nobody's business there.
    check["answering"] = len(answering)
    if answering:
        # Slow, not down: the heartbeat task queues behind other work.
        return {**check, "ok": True, "busy": True}
    check["error"] = "no worker answers"
    return check


def _check_work(database_ok: bool) -> dict[str, Any]:
    """Background work that has made no progress for longer than its time limit."""
    if not database_ok:
        return {"ok": False, "error": "database unavailable"}
    stuck = leases.work_stuck()
    if not stuck:
        return {"ok": True}
    counts: dict[str, int] = {}
    for item in stuck:
        counts[item.kind] = counts.get(item.kind, 0) + 1
    return {
        "ok": False,
        "error": f"{len(stuck)} stuck",
        "stuck": counts,
        "oldest_seconds": round(max(item.seconds for item in stuck), 1),
    }


def _run_registered(check: healthchecks.Check) -> dict[str, Any]:
    try:
        return check()
    except Exception as exc:  # a broken check is a failed check, never a 500 on /healthz
        return {"ok": False, "error": f"the check itself failed ({type(exc).__name__})"}


def health_status() -> Health:
    database = _check_database()
    broker = _check_broker()
    checks = {
        "database": database,
        "broker": broker,
        "beat": _check_beat(database["ok"]),
        "workers": _check_workers(database["ok"], broker["ok"]),
        "work": _check_work(database["ok"]),
    }
    for name, check in healthchecks.registered().items():
        checks[name] = _run_registered(check)
    return Health(healthy=all(check["ok"] for check in checks.values()), checks=checks)


def work_stuck() -> list[leases.StuckWork]:
    return leases.work_stuck()


def probes_recent(*, limit: int = 10) -> list[TaskProbe]:
    return list(TaskProbe.objects.select_related("requested_by")[:limit])


def api_tokens_of(user: Any) -> list[ApiToken]:
    """A user's API tokens, newest first (revoked ones included, marked)."""
    return list(ApiToken.objects.filter(user=user).order_by("-created_at", "-id"))


def api_token_of(*, user: Any, pk: int) -> ApiToken | None:
    """One of ``user``'s tokens (None when it is someone else's or does not exist)."""
    return ApiToken.objects.filter(pk=pk, user=user).first()
