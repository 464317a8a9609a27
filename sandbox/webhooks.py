"""Outgoing webhooks for terminal job states, signed the Standard Webhooks way."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import outbound, queue
from sandbox import ids
from sandbox.models import SandboxAccount, SandboxJob, SandboxWebhookDelivery

EVENT_TYPES = {
    "succeeded": "fine_tuning.job.succeeded",
    "failed": "fine_tuning.job.failed",
    "cancelled": "fine_tuning.job.cancelled",
}


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        return base64.b64decode(secret.removeprefix("whsec_"))
    return secret.encode()


def sign(*, secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def delivery_schedule(*, job: SandboxJob) -> None:
    """Record the one delivery a terminal state deserves and enqueue it after commit."""
    account = SandboxAccount.objects.filter(owner=job.owner).first()
    event_type = EVENT_TYPES.get(job.status)
    if account is None or not account.webhook_url or event_type is None:
        return
    delivery_id = ids.webhook_event_id()
    payload = {
        "id": delivery_id,
        "object": "event",
        "created_at": int(time.time()),
        "type": event_type,
        "data": {"id": job.id},
    }
    try:
        with transaction.atomic():
            SandboxWebhookDelivery.objects.create(
                id=delivery_id, owner=job.owner, job=job, type=event_type,
                url=account.webhook_url, payload=payload,
            )  # fmt: skip
    except IntegrityError:
        return  # already scheduled for this state
    queue.enqueue("sandbox.tasks.webhook_deliver", delivery_id)


class DeliveryFailed(Exception):
    pass


def delivery_attempt(*, delivery_id: str) -> bool:
    """POST one delivery; True when delivered (now or before), False when it never will be
    (a refused URL, the sandbox disabled). Raises DeliveryFailed to retry."""
    delivery = SandboxWebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.delivered_at is not None:
        return True
    if not settings.SANDBOX_ENABLED:
        return False  # queued before the sandbox was switched off: nobody may send it now
    account = SandboxAccount.objects.get(owner=delivery.owner)
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            secret=account.webhook_secret, webhook_id=delivery.id, timestamp=timestamp, body=body
        ),
        "user-agent": "OpenAI/1.0 (+https://platform.openai.com/docs/webhooks) tuneboard-sandbox",
    }
    status, error, refused = None, "", False
    try:
        response = outbound.post(delivery.url, content=body, headers=headers, timeout=10)
        status = response.status_code
    except outbound.UnsafeURL as exc:
        error, refused = f"refused: {exc}"[:300], True
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
    delivered = status is not None and 200 <= status < 300
    SandboxWebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=delivery.attempts + 1,
        last_status=status,
        last_error=error,
        delivered_at=timezone.now() if delivered else None,
    )
    if refused:
        return False  # trying again cannot help
    if not delivered:
        raise DeliveryFailed(error or f"HTTP {status}")
    return True
