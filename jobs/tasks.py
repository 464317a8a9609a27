from celery import shared_task

from jobs import services, sync
from jobs.providers import TransientProviderError


@shared_task(
    acks_late=True,
    autoretry_for=(TransientProviderError,),
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=services.MAX_LAUNCH_ATTEMPTS,
)
def job_launch_task(job_id: str) -> None:
    services.job_launch_run(job_id=job_id)


@shared_task(acks_late=True)
def job_sync_task(job_id: str) -> None:
    sync.job_sync(job_id=job_id)


@shared_task(acks_late=True, expires=60)
def poll_due_jobs() -> None:
    for job_id in sync.jobs_claim_due():
        job_sync_task.delay(job_id)
