from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from dashboard import services
from dashboard.env import env_str


class Command(BaseCommand):
    help = (
        "Idempotent first-run setup: the first admin account when the database has no user, a "
        "'Sandbox' connection to the built-in sandbox, and an 'OpenAI' connection when "
        "OPENAI_API_KEY is set."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sandbox-url", help="Base URL of this instance's sandbox API.")

    def handle(self, *args: object, **options: object) -> None:
        self._admin()
        from jobs.models import ProviderConnection
        from jobs.services import connection_ensure

        sandbox_url = options.get("sandbox_url")
        if sandbox_url:
            connection_ensure(
                name="Sandbox",
                kind=ProviderConnection.Kind.SANDBOX,
                base_url=str(sandbox_url),
                api_key=settings.SANDBOX_API_KEYS[0],
            )
        openai_key = env_str("OPENAI_API_KEY")
        if openai_key:
            connection_ensure(
                name="OpenAI",
                kind=ProviderConnection.Kind.OPENAI,
                base_url=env_str("OPENAI_BASE_URL", "https://api.openai.com/v1") or "",
                api_key=openai_key,
            )

    def _admin(self) -> None:
        password_file = settings.VAR_DIR / "admin-password.txt"
        created = services.admin_bootstrap(
            username=env_str("TUNEBOARD_ADMIN_USER"),
            password=env_str("TUNEBOARD_ADMIN_PASSWORD"),
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
