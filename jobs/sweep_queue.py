"""When a sweep is advanced (``jobs.sweeps.sweep_advance``, by its task): as soon as one of
its runs ends, and by beat for every sweep under way. Apart from ``jobs.sweeps`` so that the
sync, below the launch services, can ask."""

from __future__ import annotations

from core import queue
from jobs.models import Job, Sweep, SweepRun

ADVANCE_TASK = "jobs.tasks.sweep_advance_task"


def sweep_job_settled(*, job: Job) -> None:
    """A run of a sweep ended: its sweep may launch the next one now (beat would, later)."""
    if not job.is_terminal:
        return
    sweep_id = (
        SweepRun.objects.filter(job=job, sweep__status__in=Sweep.ACTIVE)
        .values_list("sweep_id", flat=True)
        .first()
    )
    if sweep_id is not None:
        queue.enqueue(ADVANCE_TASK, sweep_id, robust=True)


def sweeps_advance_all() -> list[int]:
    """Beat's safety net: every sweep under way is advanced (a lost task, a launch that
    failed without a sync)."""
    ids = list(Sweep.objects.filter(status__in=Sweep.ACTIVE).values_list("pk", flat=True))
    for sweep_id in ids:
        queue.enqueue(ADVANCE_TASK, sweep_id, robust=True)
    return ids
