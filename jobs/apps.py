from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from core.signals import bootstrap
        from jobs.bootstrap import connections_bootstrap

        bootstrap.connect(connections_bootstrap, dispatch_uid="jobs.connections_bootstrap")
