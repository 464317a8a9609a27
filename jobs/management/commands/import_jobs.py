"""Import a connection's whole fine-tuning history in this process (same service as the
"Import history" button, run to the end instead of in task-sized steps)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import history
from jobs.models import ImportRun, ProviderConnection
from jobs.services import JobError


class Command(BaseCommand):
    help = "Import every fine-tuning job of a provider connection, with events, metrics and files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--connection", required=True, help="The connection's name.")
        parser.add_argument(
            "--max-failures",
            type=int,
            default=history.MAX_FAILURES,
            help="Transient provider failures in a row before giving up (default %(default)s).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection = ProviderConnection.objects.filter(name=options["connection"]).first()
        if connection is None:
            raise CommandError(f"There is no connection named {options['connection']!r}.")
        try:
            run = history.import_now(
                connection=connection, user=None, max_failures=max(1, options["max_failures"])
            )
        except JobError as exc:
            raise CommandError(str(exc)) from None
        summary = (
            f"Import {run.pk} of “{connection.name}”: {run.get_status_display().lower()}. "
            f"{run.jobs_done}/{run.jobs_total} jobs ({run.jobs_created} new), "
            f"{run.files_downloaded} files downloaded, {run.files_missing} missing, "
            f"{run.errors} errors."
        )
        if run.status != ImportRun.Status.SUCCEEDED:
            raise CommandError(f"{summary} Last error: {run.last_error}")
        self.stdout.write(self.style.SUCCESS(summary))
