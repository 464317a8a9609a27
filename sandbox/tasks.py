from celery import shared_task

from sandbox import webhooks


@shared_task(
    acks_late=True,
    autoretry_for=(webhooks.DeliveryFailed,),
    retry_backoff=2,
    retry_backoff_max=300,
    max_retries=8,
)
def webhook_deliver(delivery_id: str) -> None:
    webhooks.delivery_attempt(delivery_id=delivery_id)
