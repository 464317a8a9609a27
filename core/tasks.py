from __future__ import annotations

from celery import Task, shared_task

from core import services


# Sent by beat every HEARTBEAT_INTERVAL: its freshness shows that workers take tasks.
@shared_task(acks_late=True)
def worker_heartbeat() -> None:
    services.heartbeat_record(name="worker")


@shared_task(bind=True, acks_late=True)
def probe_complete(self: Task[[int], None], probe_id: int) -> None:
    services.probe_complete(probe_id=probe_id, worker=self.request.hostname or "")


# Safe to run twice or concurrently: each row is moved on with a compare-and-swap first.
@shared_task(acks_late=True)
def work_reap() -> None:
    services.work_reap()
