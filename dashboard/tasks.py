from celery import shared_task

from dashboard import curves


# A cache refresh: running it twice, or after a newer sync, computes nothing more.
@shared_task(acks_late=True, ignore_result=True)
def run_diagnosis_refresh_task(job_id: str) -> None:
    curves.warm(job_id)
