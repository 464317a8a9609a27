from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from core import services, signals


class Command(BaseCommand):
    help = (
        "Idempotent first-run setup: the first admin account when the database has no user, "
        "then what each app sets up (the jobs app: a 'Sandbox' connection to the built-in "
        "sandbox, and an 'OpenAI' connection when OPENAI_API_KEY is set)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox-url", help="Base URL of this instance's sandbox API.")

    def handle(self, *args: object, **options: object) -> None:
        self._admin()
        signals.bootstrap.send(sender=self.__class__, sandbox_url=options.get("sandbox_url"))

    def _admin(self) -> None:
        password_file = settings.VAR_DIR / "admin-password.txt"
        created = services.admin_bootstrap(
            username=settings.TUNEBOARD_ADMIN_USER,
            password=settings.TUNEBOARD_ADMIN_PASSWORD,
            password_file=password_file,
        )
        if created is None:
            return
        username, generated = created
        if generated:
            self.stdout.write(
                f"Created admin account '{username}' with password: {generated}\n"
                f"(also saved to {password_file}, readable only by you)"
            )
        else:
            self.stdout.write(
                f"Created admin account '{username}' (password from TUNEBOARD_ADMIN_PASSWORD)"
            )
