"""Asking for background work. A service enqueues a task by its name, so the module that asks
for work never imports the tasks module that calls it back (tasks import services, never the
other way round: no import cycle). Routing to queues is by name (``CELERY_TASK_ROUTES``)."""

from __future__ import annotations

from typing import Any

from celery import current_app
from django.db import transaction


class UnknownTask(LookupError):
    pass


def enqueue(name: str, *args: Any, countdown: float | None = None, robust: bool = False) -> None:
    """Send task ``name`` with ``args`` once the current transaction commits (at once outside
    a transaction), so a worker never sees rows that are not there yet. ``robust``: a broker
    failure is logged instead of raised (for work that something else sends again)."""
    if name not in current_app.tasks:
        # Web processes import the apps' tasks modules only when asked (workers at start-up).
        current_app.loader.import_default_modules()
        if name not in current_app.tasks:
            raise UnknownTask(f"no task named {name!r} is registered")

    def send() -> None:
        current_app.send_task(name, args=args, countdown=countdown or None)

    transaction.on_commit(send, robust=robust)
