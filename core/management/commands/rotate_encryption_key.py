from django.core.management.base import BaseCommand, CommandError

from core import crypto


class Command(BaseCommand):
    help = (
        "After a key rotation (FIELD_ENCRYPTION_KEY=<new>,<old>…): re-encrypt with the first key "
        "every stored secret that only an older key reads, so that the older keys can be removed."
    )

    def handle(self, *args: object, **options: object) -> None:
        outcome = crypto.secrets_reencrypt()
        self.stdout.write(
            f"Re-encrypted {outcome.reencrypted} stored secret(s) with the first "
            f"FIELD_ENCRYPTION_KEY; {outcome.current} already used it."
        )
        if outcome.unreadable:
            listed = "\n  ".join(outcome.unreadable)
            raise CommandError(
                f"{len(outcome.unreadable)} stored secret(s) cannot be decrypted with any "
                f"FIELD_ENCRYPTION_KEY key and were left as they are:\n  {listed}\n"
                "Add the key they were encrypted with (after the first) and run this again, "
                "or enter those secrets again."
            )
        self.stdout.write(
            "Every stored secret now reads with the first key alone: the other keys can be "
            "removed from FIELD_ENCRYPTION_KEY."
        )
