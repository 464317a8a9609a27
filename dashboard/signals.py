"""Signal receivers of the dashboard (connected in ``DashboardConfig.ready``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from dashboard import curves
from dashboard.tasks import run_diagnosis_refresh_task
from jobs.models import Job

logger = logging.getLogger("tuneboard.dashboard")

_WARM_FIELDS = frozenset({"status", "next_poll_at", "last_step", "total_steps", "last_synced_at"})


def warm_diagnosis(
    sender: type, instance: Job, update_fields: Iterable[str] | None = None, **kwargs: object
) -> None:
    """``post_save`` of a Job (connected in DashboardConfig.ready): once the transaction
    commits, a run saved in its final state (its last sync) gets its diagnosis computed, and
    a running one with steps gets it refreshed by a task, so no page has to read its metric
    rows."""
    if update_fields is not None and not _WARM_FIELDS & set(update_fields):
        return
    job_id = instance.pk
    if instance.status in Job.TERMINAL and instance.next_poll_at is None:
        transaction.on_commit(lambda: warm_safely(job_id))
    elif instance.last_step is not None:
        transaction.on_commit(lambda: run_diagnosis_refresh_task.delay(str(job_id)))


def warm_safely(job_id: Any) -> None:
    try:
        curves.warm(job_id)
    except Exception:  # a cache: never let it break the sync that finished the run
        logger.exception("could not store the diagnosis of %s", job_id)
