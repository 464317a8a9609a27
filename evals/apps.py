from django.apps import AppConfig


class EvalsConfig(AppConfig):
    name = "evals"
    verbose_name = "Evaluations"

    def ready(self) -> None:
        from evals.sections import run_evaluations_section
        from jobs.signals import job_page

        job_page.connect(run_evaluations_section, dispatch_uid="evals.run_evaluations")
