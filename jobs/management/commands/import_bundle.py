"""Import a Tuneboard export bundle (the zip from "Export"); importing twice changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import bundles


class Command(BaseCommand):
    help = "Import a Tuneboard export bundle (.zip): jobs, events, checkpoints, metrics, datasets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The bundle file.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        try:
            outcome = bundles.bundle_import(source=path, actor=None)
        except bundles.BundleError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(self.style.SUCCESS(outcome.summary()))
        if outcome.missing_files:
            self.stdout.write(
                f"Dataset files not in the bundle: {', '.join(outcome.missing_files)}"
            )
