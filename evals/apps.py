from django.apps import AppConfig
from django.conf import settings


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        from core import leases
        from evals.models import Evaluation
        from evals.sections import run_evaluations_section
        from jobs.signals import job_page

        job_page.connect(run_evaluations_section, dispatch_uid="evals.run_evaluations")
        leases.register(
            leases.WorkKind(
                name="evaluation",
                label="Evaluation",
                active=lambda: Evaluation.objects.filter(
                    status__in=(Evaluation.Status.QUEUED, Evaluation.Status.RUNNING)
                ),
                task="evals.tasks.evaluation_run_task",
                task_args=lambda evaluation: (evaluation.pk,),
                time_limit=lambda: float(settings.PROVIDER_TASK_TIME_LIMIT),
                describe=lambda evaluation: f"evaluation “{evaluation}” (#{evaluation.pk})",
            )
        )
