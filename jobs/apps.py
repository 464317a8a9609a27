from django.apps import AppConfig
from django.conf import settings


class JobsConfig(AppConfig):
    name = "jobs"

    def ready(self) -> None:
        from core.signals import bootstrap
        from jobs.bootstrap import connections_bootstrap

        bootstrap.connect(connections_bootstrap, dispatch_uid="jobs.connections_bootstrap")
        _register_work()


def _provider_time_limit() -> float:
    # Launch and import steps run as provider tasks, with their shorter limits.
    return float(settings.PROVIDER_TASK_TIME_LIMIT)


def _register_work() -> None:
    from core import leases
    from jobs.models import ImportRun, Job, PriceQuote

    leases.register(
        leases.WorkKind(
            name="launch",
            label="Job launch",
            # Launched here only: a job from an export bundle that never reached its provider
            # is history, and launching it would start (and bill) a job nobody asked for.
            active=lambda: Job.objects.filter(
                origin=Job.Origin.LAUNCHED,
                status__in=(Job.Status.PENDING, Job.Status.LAUNCHING),
                provider_job_id__isnull=True,
            ),
            task="jobs.tasks.job_launch_task",
            task_args=lambda job: (str(job.pk),),
            time_limit=_provider_time_limit,
            describe=lambda job: f"job {job.name or job.pk} ({job.base_model})",
        )
    )
    leases.register(
        leases.WorkKind(
            name="import",
            label="History import",
            active=lambda: ImportRun.objects.filter(status__in=ImportRun.ACTIVE),
            task="jobs.tasks.import_run_task",
            task_args=lambda run: (run.pk,),
            time_limit=_provider_time_limit,
            describe=lambda run: f"import #{run.pk} of connection #{run.connection_id}",
        )
    )
    leases.register(
        leases.WorkKind(
            name="price_quote",
            label="Price quote",
            active=lambda: PriceQuote.objects.filter(status=PriceQuote.Status.PENDING),
            task="jobs.tasks.price_quote_task",
            task_args=lambda quote: (quote.pk,),
            time_limit=_provider_time_limit,
            describe=lambda quote: f"price quote #{quote.pk} for {quote.base_model}",
        )
    )
