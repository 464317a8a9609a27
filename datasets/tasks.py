from celery import shared_task

from datasets import services


# Redelivery (late ack) and retries are harmless: the service claims the dataset with a
# conditional UPDATE. Only database hiccups are retried; a broken file is a result.
@shared_task(
    acks_late=True,
    autoretry_for=services.TRANSIENT_ERRORS,
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=5,
)
def dataset_validate(dataset_id: int, model_id: str | None) -> None:
    services.dataset_validate(dataset_id=dataset_id, model_id=model_id)
