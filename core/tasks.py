from __future__ import annotations

from celery import Task, shared_task

from core import services


@shared_task(acks_late=True)
def beat_heartbeat() -> None:
    services.heartbeat_record(name="beat")


@shared_task(bind=True, acks_late=True)
def probe_complete(self: Task[[int], None], probe_id: int) -> None:
    services.probe_complete(probe_id=probe_id, worker=self.request.hostname or "")
