from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.models import Heartbeat
from core.services import heartbeat_record

pytestmark = pytest.mark.django_db


def test_healthy_when_database_broker_and_beat_are_up() -> None:
    heartbeat_record(name="beat")
    heartbeat_record(name="worker")
    response = Client().get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["broker"] == {"ok": True}
    assert body["beat"]["ok"] is True and body["beat"]["age_seconds"] < 5
    assert body["workers"]["ok"] is True and body["work"] == {"ok": True}
    assert "no-cache" in response["Cache-Control"]


def test_unhealthy_without_any_heartbeat() -> None:
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["beat"] == {
        "ok": False,
        "error": "no heartbeat recorded yet",
        "last_seen": None,
    }


def test_unhealthy_when_heartbeat_is_stale(settings) -> None:  # type: ignore[no-untyped-def]
    Heartbeat.objects.create(
        name="beat",
        last_seen=timezone.now() - settings.HEARTBEAT_STALE_AFTER - timedelta(seconds=1),
    )
    response = Client().get("/healthz")
    assert response.status_code == 503
    assert response.json()["beat"]["ok"] is False


def test_unhealthy_when_broker_is_down(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    heartbeat_record(name="beat")
    heartbeat_record(name="worker")
    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis+socket://{tmp_path}/nothing-listens.sock")
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["broker"]["ok"] is False and body["database"] == {"ok": True}


def test_a_late_worker_heartbeat_with_no_worker_answering_is_not_blamed_on_beat(settings) -> None:  # type: ignore[no-untyped-def]
    heartbeat_record(name="beat")
    Heartbeat.objects.create(
        name="worker",
        last_seen=timezone.now() - settings.HEARTBEAT_STALE_AFTER - timedelta(seconds=1),
    )
    response = Client().get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["beat"]["ok"] is True
    assert body["workers"]["ok"] is False and body["workers"]["error"] == "no worker answers"
