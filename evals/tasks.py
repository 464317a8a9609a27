from celery import shared_task

from evals import running
from jobs.tasks import PROVIDER_LIMITS


# One step (a time budget's worth of cells); the service queues the next step or a retry.
# Redelivered or duplicated steps are harmless: the evaluation is claimed under a lock and
# only pending cells are requested.
@shared_task(acks_late=True, **PROVIDER_LIMITS)
def evaluation_run_task(evaluation_id: int) -> None:
    running.evaluation_step_and_continue(evaluation_id=evaluation_id)
