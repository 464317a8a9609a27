from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender: AppConfig, **kwargs: object) -> None:
    from dashboard.services import roles_sync

    roles_sync()


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Tuneboard"

    def ready(self) -> None:
        # Connected to this app only: it migrates after auth and contenttypes, so every
        # permission exists by the time the groups are synchronised.
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="dashboard.roles_sync")
