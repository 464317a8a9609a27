"""Webhooks in: Standard Webhooks signatures checked the way the official SDK checks them,
replays and forgeries without side effects, and a delivery from the sandbox (sent by the worker
to the live server) that gets the job synced with no poller running."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import openai
import pytest
from django.test import Client
from django.utils import timezone

from jobs.models import Job, MetricPoint, ProviderConnection, WebhookDelivery
from jobs.services import LaunchRequest, connection_archive, connection_save, job_launch
from jobs.webhooks import WebhookRejected, signature, verify
from tests.conftest import wait_until
from tests.history.helpers import WEBHOOK_SECRET
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

PLAIN_SECRET = "a plain-text secret"
SDK = openai.OpenAI(api_key="x")


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = (
        base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_")
        else secret.encode()
    )
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event(job_id: str, kind: str = "succeeded", webhook_id: str = "wh_1") -> bytes:
    return json.dumps(
        {
            "id": webhook_id,
            "object": "event",
            "created_at": int(time.time()),
            "type": f"fine_tuning.job.{kind}",
            "data": {"id": job_id},
        }
    ).encode()


def headers_for(
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    webhook_id: str = "wh_1",
    timestamp: int | None = None,
    signature_header: str | None = None,
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header or sign(secret, webhook_id, timestamp, body),
    }


def post(connection_id: int, body: bytes, headers: dict[str, str]) -> Any:
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return Client().post(
        f"/webhooks/{connection_id}/", body, content_type="application/json", **extra
    )


def sdk_accepts(body: bytes, headers: dict[str, str], secret: str = WEBHOOK_SECRET) -> bool:
    try:
        SDK.webhooks.verify_signature(body, headers, secret=secret)
    except openai.InvalidWebhookSignatureError:
        return False
    return True


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(
        name="Hooked", kind="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x-000000",
        webhook_secret=WEBHOOK_SECRET,
    )  # fmt: skip


@pytest.fixture
def job(connection: ProviderConnection) -> Job:
    return Job.objects.create(
        connection=connection, provider_job_id="ftjob-hook", base_model="gpt-4o-mini",
        status="running", next_poll_at=timezone.now() + timezone.timedelta(minutes=5),
    )  # fmt: skip


@pytest.mark.django_db
def test_signatures_match_the_sdk_verifier() -> None:
    body = event("ftjob-1")
    for secret in (WEBHOOK_SECRET, PLAIN_SECRET):
        headers = headers_for(body, secret=secret)
        assert sdk_accepts(body, headers, secret)
        assert verify(secret=secret, headers=headers, body=body) == "wh_1"
        ours = signature(
            secret=secret, webhook_id="wh_1", timestamp=headers["webhook-timestamp"], body=body
        )
        assert ours == headers["webhook-signature"]


@pytest.mark.django_db
def test_accepted_delivery_queues_a_sync_once(
    connection: ProviderConnection, job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    body = event(job.provider_job_id)
    headers = headers_for(body)
    assert sdk_accepts(body, headers)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(connection.pk, body, headers)
    assert response.status_code == 200 and response.json() == {"status": "sync_queued"}
    assert len(callbacks) == 1  # job_sync_task.delay, after commit
    delivery = WebhookDelivery.objects.get()
    assert (delivery.webhook_id, delivery.type, delivery.provider_job_id) == (
        "wh_1", "fine_tuning.job.succeeded", "ftjob-hook",
    )  # fmt: skip
    assert delivery.job == job and delivery.outcome == "sync_queued" and delivery.received_at
    job.refresh_from_db()
    assert job.next_poll_at <= timezone.now()  # polling picks it up even if the task is lost

    # The same delivery again (a replay, or the provider retrying): acknowledged, nothing done.
    Job.objects.filter(pk=job.pk).update(next_poll_at=None)
    with django_capture_on_commit_callbacks() as callbacks:
        again = post(connection.pk, body, headers)
    assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert callbacks == [] and WebhookDelivery.objects.count() == 1
    assert Job.objects.get(pk=job.pk).next_poll_at is None


REJECTIONS = {
    "bad signature": lambda body: (body, headers_for(body, secret="whsec_" + "A" * 32), 401),
    "tampered body": lambda body: (body.replace(b"succeeded", b"cancelled"), headers_for(body), 401),
    "stale timestamp": lambda body: (body, headers_for(body, timestamp=int(time.time()) - 301), 401),
    "future timestamp": lambda body: (body, headers_for(body, timestamp=int(time.time()) + 301), 401),
    "unsigned": lambda body: (body, {k: v for k, v in headers_for(body).items() if k != "webhook-signature"}, 400),
    "no id": lambda body: (body, {k: v for k, v in headers_for(body).items() if k != "webhook-id"}, 400),
    "timestamp not a number": lambda body: (body, {**headers_for(body), "webhook-timestamp": "soon"}, 400),
    "other scheme only": lambda body: (body, {**headers_for(body), "webhook-signature": "v2," + headers_for(body)["webhook-signature"][3:]}, 401),
}  # fmt: skip


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(REJECTIONS))
def test_forgeries_are_rejected_without_side_effects(
    case: str, connection: ProviderConnection, job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    body, headers, status = REJECTIONS[case](event(job.provider_job_id))
    if "webhook-signature" in headers and "webhook-id" in headers:
        # The official verifier says no as well.
        try:
            accepted = sdk_accepts(body, headers)
        except Exception:  # the SDK raises other errors for malformed headers
            accepted = False
        assert not accepted or case == "other scheme only"
    before = Job.objects.get(pk=job.pk).next_poll_at
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(connection.pk, body, headers)
    assert response.status_code == status and "error" in response.json()
    assert callbacks == [] and not WebhookDelivery.objects.exists()
    assert Job.objects.get(pk=job.pk).next_poll_at == before


@pytest.mark.django_db
def test_any_matching_signature_passes(connection: ProviderConnection, job: Job) -> None:
    body = event(job.provider_job_id, webhook_id="wh_multi")
    good = headers_for(body, webhook_id="wh_multi")
    forged = sign("whsec_" + "B" * 32, "wh_multi", int(good["webhook-timestamp"]), body)
    headers = {**good, "webhook-signature": f"v1,bm9wZQ== {forged} {good['webhook-signature']}"}
    assert sdk_accepts(body, headers)
    assert post(connection.pk, body, headers).json() == {"status": "sync_queued"}
    only_forged = {**good, "webhook-signature": f"{forged} v1,bm9wZQ=="}
    assert not sdk_accepts(body, {**only_forged, "webhook-id": "wh_other"})
    assert post(connection.pk, body, {**only_forged, "webhook-id": "wh_other"}).status_code == 401


@pytest.mark.django_db
def test_unknown_connections_are_indistinguishable(connection: ProviderConnection) -> None:
    body = event("ftjob-x")
    headers = headers_for(body)
    silent = connection_save(
        name="No secret", kind="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x-000001"
    )
    missing = post(999_999, body, headers)
    unsigned = post(silent.pk, body, headers)
    elsewhere = Client().post("/webhooks/nothing-here/", body, content_type="application/json")
    assert missing.status_code == unsigned.status_code == elsewhere.status_code == 404
    assert missing.content == unsigned.content == elsewhere.content
    assert not WebhookDelivery.objects.exists()
    assert Client().get(f"/webhooks/{connection.pk}/").status_code == 405


@pytest.mark.django_db
def test_plain_secrets_other_events_and_unknown_jobs(connection: ProviderConnection) -> None:
    connection_save(
        connection=connection, name=connection.name, kind=connection.kind,
        base_url=connection.base_url, api_key=None, webhook_secret=PLAIN_SECRET,
    )  # fmt: skip
    body = event("ftjob-unknown", webhook_id="wh_a")
    response = post(connection.pk, body, headers_for(body, secret=PLAIN_SECRET, webhook_id="wh_a"))
    assert response.json() == {"status": "unknown_job"}
    other = json.dumps(
        {"id": "wh_b", "type": "batch.completed", "data": {"id": "batch_1"}}
    ).encode()
    response = post(
        connection.pk, other, headers_for(other, secret=PLAIN_SECRET, webhook_id="wh_b")
    )
    assert response.json() == {"status": "ignored"}
    broken = b"not json at all"
    headers = headers_for(broken, secret=PLAIN_SECRET, webhook_id="wh_c")
    assert post(connection.pk, broken, headers).status_code == 400
    assert WebhookDelivery.objects.count() == 2


@pytest.mark.django_db
def test_archived_connections_acknowledge_without_syncing(
    connection: ProviderConnection, job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    connection_archive(connection=connection, actor=None)
    body = event(job.provider_job_id)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(connection.pk, body, headers_for(body))
    assert response.json() == {"status": "ignored"} and callbacks == []
    assert Job.objects.get(pk=job.pk).next_poll_at is None


@pytest.mark.django_db
def test_rejections_are_pure_functions() -> None:
    body = event("ftjob-1")
    headers = headers_for(body)
    with pytest.raises(WebhookRejected) as rejected:
        verify(secret=WEBHOOK_SECRET, headers=headers, body=body, now=time.time() + 400)
    assert rejected.value.status == 401
    assert verify(secret=WEBHOOK_SECRET, headers=headers, body=body, now=time.time() + 200)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_sandbox_delivery_gets_the_job_synced(
    settings, live_server, sandbox, sandbox_connection, make_dataset, sdk, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.02
    url = f"{live_server.url}/webhooks/{sandbox_connection.pk}/"
    account = sandbox.control("account", {"webhook_url": url, "webhook_secret": WEBHOOK_SECRET})
    assert account["webhook_secret_set"]
    job = job_launch(
        request=LaunchRequest(
            connection=sandbox_connection,
            base_model="gpt-4o-mini",
            training_dataset=make_dataset(chat_examples(12)),
        ),
        user=None,
    )
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id, timeout=30)
    job.refresh_from_db()
    assert job.status not in Job.TERMINAL  # nothing polls it: no beat in this test
    # Time passes at the provider: the job finishes there and the sandbox sends its webhook
    # (through the worker) to the live server, which queues the sync the worker then runs.
    assert wait_until(
        lambda: sdk.fine_tuning.jobs.retrieve(job.provider_job_id).status == "succeeded",
        timeout=30,
        interval=0.5,
    )
    assert wait_until(lambda: Job.objects.get(pk=job.pk).status == "succeeded", timeout=30)
    delivery = WebhookDelivery.objects.get(connection=sandbox_connection)
    assert delivery.type == "fine_tuning.job.succeeded" and delivery.job_id == job.pk
    assert delivery.outcome == "sync_queued"
    job.refresh_from_db()
    assert job.fine_tuned_model and job.total_steps
    assert wait_until(lambda: MetricPoint.objects.filter(job=job).count() == job.total_steps)
    html = client_for("staff").get(f"/jobs/connections/{sandbox_connection.pk}/history/")
    text = html.content.decode()
    assert f"http://testserver/webhooks/{sandbox_connection.pk}/" in text
    assert "fine_tuning.job.succeeded" in text and "Sync queued" in text
