from celery import shared_task
from django.conf import settings

from jobs import (
    catalogs,
    guardrail_actions,
    history,
    notifications,
    services,
    sweep_queue,
    sweeps,
    sync,
)
from jobs.providers import TransientProviderError

# Every task that waits on a provider stops at these limits, well before the global ones: a
# hanging provider frees the worker slot, and each service treats the soft limit like a
# transient provider failure (the launch retries, the sync backs off and polls again, the
# import and evaluation steps are sent again, the control is reported failed).
PROVIDER_LIMITS = {
    "soft_time_limit": settings.PROVIDER_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.PROVIDER_TASK_TIME_LIMIT,
}


@shared_task(
    acks_late=True,
    autoretry_for=(TransientProviderError,),
    retry_backoff=settings.PROVIDER_TASK_RETRY_BACKOFF,
    retry_backoff_max=120,
    max_retries=services.MAX_LAUNCH_ATTEMPTS,
    **PROVIDER_LIMITS,
)
def job_launch_task(job_id: str) -> None:
    services.job_launch_run(job_id=job_id)


@shared_task(acks_late=True, **PROVIDER_LIMITS)
def job_sync_task(job_id: str) -> None:
    sync.job_sync(job_id=job_id)


@shared_task(acks_late=True, expires=60)
def poll_due_jobs() -> None:
    for job_id in sync.jobs_claim_due():
        job_sync_task.delay(job_id)


# One step of an import (a time budget's worth); the service re-enqueues the next step, or a
# retry after a transient provider failure. Redelivered or duplicated steps are no-ops: the
# run is claimed under a per-connection lock.
@shared_task(acks_late=True, **PROVIDER_LIMITS)
def import_run_task(run_id: int) -> None:
    history.import_step_and_continue(run_id=run_id)


@shared_task(
    acks_late=True,
    autoretry_for=(notifications.NotificationFailed,),
    retry_backoff=10,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=notifications.MAX_ATTEMPTS,
)
def notification_send_task(notification_id: int) -> None:
    notifications.notification_send(notification_id=notification_id)


# A cancel, pause, resume, sync or model deletion asked for on a page; the service records the
# outcome (errors included) on the control, and a duplicate delivery finds it claimed or done.
@shared_task(acks_late=True, **PROVIDER_LIMITS)
def job_control_task(control_id: int) -> None:
    services.job_control_run(control_id=control_id)


# Upserts: a duplicate delivery writes the same rows again.
@shared_task(
    acks_late=True,
    autoretry_for=(TransientProviderError,),
    retry_backoff=10,
    max_retries=3,
    **PROVIDER_LIMITS,
)
def catalog_refresh_task(connection_id: int) -> None:
    catalogs.catalog_refresh(connection_id=connection_id)


@shared_task(acks_late=True, expires=3600)
def catalogs_refresh_all() -> None:
    catalogs.catalogs_refresh_all()


# The quote is claimed by a lease; a transient failure leaves it queued for this retry (or,
# after a lost worker, for the reaper), and the service gives up after a few attempts.
@shared_task(
    acks_late=True,
    autoretry_for=(TransientProviderError,),
    retry_backoff=settings.PROVIDER_TASK_RETRY_BACKOFF,
    max_retries=catalogs.MAX_QUOTE_ATTEMPTS,
    **PROVIDER_LIMITS,
)
def price_quote_task(quote_id: int) -> None:
    catalogs.price_quote_fetch(quote_id=quote_id)


@shared_task(acks_late=True)
def guardrail_act_task(firing_id: int) -> None:
    guardrail_actions.guardrail_act(firing_id=firing_id)


# The sweep's row lock serialises advances; a duplicate delivery finds nothing more to launch.
@shared_task(acks_late=True)
def sweep_advance_task(sweep_id: int) -> None:
    sweeps.sweep_advance(sweep_id=sweep_id)


@shared_task(acks_late=True, expires=60)
def sweeps_advance_due() -> None:
    sweep_queue.sweeps_advance_all()
