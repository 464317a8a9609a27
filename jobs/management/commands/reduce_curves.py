"""Recompute the stored display curves of runs from their metric rows."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import curvestore
from jobs.models import Job, MetricPoint


class Command(BaseCommand):
    help = (
        "Recompute the display curves of every run (or of the runs given) from their metric "
        "rows. The ingest keeps them up to date; this repairs rows written around it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", action="append", default=[], help="A job id (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ids = [uuid.UUID(raw) for raw in options["job"]]
        except ValueError:
            raise CommandError("A job id is not valid.") from None
        jobs = Job.objects.all()
        if ids:
            jobs = jobs.filter(pk__in=ids)
            if jobs.count() != len(set(ids)):
                raise CommandError("A job id names no job.")
        else:
            jobs = jobs.filter(pk__in=MetricPoint.objects.values("job_id"))
        done = rows = 0
        for job_id in jobs.order_by("pk").values_list("pk", flat=True).iterator():
            rows += curvestore.rebuild(job_id)
            done += 1
        self.stdout.write(
            self.style.SUCCESS(f"Reduced the curves of {done} run(s) ({rows:,} rows).")
        )
