from django.conf import settings
from django.core.management.base import BaseCommand

from dashboard import services
from dashboard.env import env_str


class Command(BaseCommand):
    help = "Create the first admin account when the database has no user (idempotent)."

    def handle(self, *args: object, **options: object) -> None:
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
