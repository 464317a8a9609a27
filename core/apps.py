from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender: AppConfig, **kwargs: object) -> None:
    from django.apps import apps

    # post_migrate is sent once per app, in INSTALLED_APPS order, and each app's permissions
    # are created by its own signal; only after the last one do all permissions exist.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if with_models and sender.label != with_models[-1].label:
        return
    from core.services import roles_sync

    roles_sync()


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Tuneboard"

    def ready(self) -> None:
        post_migrate.connect(_sync_roles, dispatch_uid="core.roles_sync")
