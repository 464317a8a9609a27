from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from core.models import Heartbeat, TaskProbe


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


def _check_beat(database_ok: bool) -> dict[str, Any]:
    if not database_ok:
        return {"ok": False, "error": "database unavailable"}
    beat = Heartbeat.objects.filter(name="beat").first()
    if beat is None:
        return {"ok": False, "error": "no heartbeat recorded yet", "last_seen": None}
    age = (timezone.now() - beat.last_seen).total_seconds()
    return {
        "ok": age <= settings.HEARTBEAT_STALE_AFTER.total_seconds(),
        "last_seen": beat.last_seen.isoformat(),
        "age_seconds": round(age, 1),
    }


def health_status() -> Health:
    database = _check_database()
    checks = {"database": database, "broker": _check_broker(), "beat": _check_beat(database["ok"])}
    return Health(healthy=all(check["ok"] for check in checks.values()), checks=checks)


def probes_recent(*, limit: int = 10) -> list[TaskProbe]:
    return list(TaskProbe.objects.select_related("requested_by")[:limit])
