"""Write a connection's complete archive (or some runs') to a bundle file."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import bundles
from jobs.models import ProviderConnection


class Command(BaseCommand):
    help = "Export jobs with their events, checkpoints, metrics and datasets to a .zip bundle."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="Where to write the bundle.")
        parser.add_argument("--connection", help="Export every job of this connection.")
        parser.add_argument("--job", action="append", default=[], help="A job id (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["connection"]
        if bool(name) == bool(options["job"]):
            raise CommandError("Give either --connection NAME or one or more --job ID.")
        if name:
            connection = ProviderConnection.objects.filter(name=name).first()
            if connection is None:
                raise CommandError(f"There is no connection named {name!r}.")
            jobs = bundles.jobs_for_export(connection=connection)
            selection: dict[str, Any] = {"connection": name}
        else:
            try:
                ids = [uuid.UUID(raw) for raw in options["job"]]
            except ValueError:
                raise CommandError("A job id is not valid.") from None
            jobs = bundles.jobs_for_export(job_ids=ids)
            selection = {"jobs": [str(i) for i in ids]}
        size = bundles.bundle_write(jobs=jobs, selection=selection, path=options["path"])
        bundles.bundle_export_audit(
            actor=None, label=name or "runs", selection=selection, jobs=jobs.count()
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {jobs.count()} job(s) to {options['path']} ({size:,} bytes)."
            )
        )
