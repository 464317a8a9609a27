import logging
import os
import time
from typing import Any

from celery import Celery
from celery.beat import PersistentScheduler
from celery.signals import beat_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("tuneboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

log = logging.getLogger("tuneboard.beat")


class TickingScheduler(PersistentScheduler):
    """Beat's own scheduler that also records beat's heartbeat on its loop, so `/healthz`
    knows beat is alive even while every worker is busy (the heartbeat task then only shows
    that the workers are behind, not that beat is gone)."""

    _last_recorded = 0.0

    def tick(self, *args: Any, **kwargs: Any) -> float:
        self._record_tick()
        interval: float = super().tick(*args, **kwargs)
        # Wake up at least once per heartbeat interval, whatever the schedule says.
        from django.conf import settings

        return min(interval, float(settings.HEARTBEAT_INTERVAL))

    def _record_tick(self) -> None:
        from django.conf import settings

        now = time.monotonic()
        if now - self._last_recorded < min(5.0, settings.HEARTBEAT_INTERVAL / 2):
            return
        try:
            from django.db import close_old_connections

            from core.services import heartbeat_record

            close_old_connections()
            heartbeat_record(name="beat", detail=f"pid {os.getpid()}")
            self._last_recorded = now
        except Exception:  # the database being away must not stop beat's schedule
            log.warning("beat could not record its heartbeat", exc_info=True)


@beat_init.connect
def _heartbeat_on_start(sender: object, **kwargs: object) -> None:
    # Without this the first worker heartbeat would wait a whole interval and /healthz would
    # report freshly started workers as missing.
    app.send_task("core.tasks.worker_heartbeat")
