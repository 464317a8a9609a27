"""Webhooks in: providers announce terminal job states (``fine_tuning.job.succeeded|failed|
cancelled``) to ``/webhooks/<connection id>/``, signed the Standard Webhooks way.

Verification (``verify``) is pure: ``webhook-id``, ``webhook-timestamp`` within five minutes
of now (either side), ``webhook-signature`` a space-separated list of ``v1,<base64>``
HMAC-SHA256 signatures of ``"<id>.<timestamp>.<body>"`` (any one matching is enough), keyed
with the base64-decoded part after ``whsec_`` or else the secret's UTF-8 bytes.

A verified delivery is recorded once (``WebhookDelivery``, unique per connection and webhook
id: replays change nothing) and triggers an immediate sync of the job: its ``next_poll_at``
becomes now and ``job_sync_task`` is enqueued after commit. Polling remains the fallback.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from core import queue
from jobs.models import Job, ProviderConnection, WebhookDelivery

TOLERANCE_SECONDS = 300
JOB_EVENTS = frozenset(
    {"fine_tuning.job.succeeded", "fine_tuning.job.failed", "fine_tuning.job.cancelled"}
)
MAX_HEADER = 10_000


class WebhookRejected(Exception):
    """The request is not a delivery we accept; ``status`` is 400 (malformed) or 401."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def signing_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            return secret.encode()
    return secret.encode()


def signature(*, secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    *,
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a delivery's signature and age; return its webhook id, or raise WebhookRejected."""
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not webhook_id or not timestamp or not signatures:
        raise WebhookRejected(400, "missing webhook-id, webhook-timestamp or webhook-signature")
    if len(webhook_id) > 200 or len(signatures) > MAX_HEADER:
        raise WebhookRejected(400, "oversized webhook headers")
    if not timestamp.isascii() or not timestamp.isdigit():
        raise WebhookRejected(400, "webhook-timestamp is not a number of seconds")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > tolerance:
        raise WebhookRejected(401, "webhook-timestamp is outside the five-minute window")
    expected = signature(secret=secret, webhook_id=webhook_id, timestamp=timestamp, body=body)
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(
            candidate.encode(), expected.encode()
        ):
            return webhook_id
    raise WebhookRejected(401, "no signature matches")


@dataclass(frozen=True)
class Received:
    delivery: WebhookDelivery
    duplicate: bool


def _payload(body: bytes) -> tuple[str, str]:
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected(400, "the body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        raise WebhookRejected(400, "the body is not a webhook event")
    data = payload.get("data")
    job_id = data.get("id") if isinstance(data, dict) else None
    return payload["type"][:100], job_id[:100] if isinstance(job_id, str) else ""


def webhook_receive(
    *, connection: ProviderConnection, headers: Mapping[str, str], body: bytes
) -> Received:
    """Verify and record one delivery, and queue the sync it asks for. Raises
    ``WebhookRejected`` (nothing stored) for anything that is not a valid delivery."""
    secret = connection.get_webhook_secret()
    webhook_id = verify(secret=secret, headers=headers, body=body)
    event_type, provider_job_id = _payload(body)
    job = None
    if event_type in JOB_EVENTS and provider_job_id:
        job = Job.objects.filter(connection=connection, provider_job_id=provider_job_id).first()
    if event_type not in JOB_EVENTS or not connection.usable:
        outcome = WebhookDelivery.Outcome.IGNORED
    elif job is None:
        outcome = WebhookDelivery.Outcome.UNKNOWN_JOB
    else:
        outcome = WebhookDelivery.Outcome.SYNC_QUEUED
    try:
        with transaction.atomic():
            delivery = WebhookDelivery.objects.create(
                connection=connection,
                webhook_id=webhook_id,
                type=event_type,
                provider_job_id=provider_job_id,
                job=job,
                outcome=outcome,
            )
            if outcome == WebhookDelivery.Outcome.SYNC_QUEUED and job is not None:
                _sync_soon(job)
    except IntegrityError:
        existing = WebhookDelivery.objects.get(connection=connection, webhook_id=webhook_id)
        return Received(existing, duplicate=True)
    return Received(delivery, duplicate=False)


def _sync_soon(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    job_id = str(job.pk)
    # robust: a broker hiccup leaves next_poll_at due, so the poller syncs it anyway.
    queue.enqueue("jobs.tasks.job_sync_task", job_id, robust=True)
