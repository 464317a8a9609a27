from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Runs and share links"

    def ready(self) -> None:
        from django.db.models.signals import post_save

        from dashboard import sections, signals
        from jobs.models import Job
        from jobs.signals import job_live, job_page

        job_page.connect(sections.run_charts_section, dispatch_uid="dashboard.run_charts")
        job_live.connect(sections.run_charts_live, dispatch_uid="dashboard.run_charts_live")
        post_save.connect(
            signals.warm_diagnosis, sender=Job, dispatch_uid="dashboard.warm_diagnosis"
        )
