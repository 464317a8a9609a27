from __future__ import annotations

import base64
import http.server
import io
import json
import secrets
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from django.db import connections, transaction

from sandbox.models import SandboxFault, SandboxWebhookDelivery
from tests.conftest import Sandbox, wait_until
from tests.sandbox.conftest import make_client
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def test_next_n_requests_fail_on_matching_path(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    sandbox.control("faults", {"kinds": ["500"], "count": 2, "path": "/models$"})
    sdk.files.list()  # other paths are untouched
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as error:
            sdk.models.list()
        assert error.value.status_code == 500 and error.value.type == "server_error"
    assert sdk.models.list().data
    faults = sandbox.control("faults", method="GET")["data"]
    assert faults[0]["injected"] == 2 and faults[0]["remaining"] == 0


def test_a_fault_fires_for_a_request_that_meets_it_mid_claim(sandbox: Sandbox) -> None:
    # Another request holding the fault's row (claiming it, or scanning faults for its own
    # path) must not hide the fault: the request waits for the row, then gets the fault.
    sandbox.control("faults", {"kinds": ["503"], "path": "/models$"})
    statuses: list[int] = []
    with transaction.atomic():
        SandboxFault.objects.select_for_update().get()  # what a concurrent claim holds
        request = threading.Thread(
            target=lambda: statuses.append(
                httpx.get(f"{sandbox.url}/models", headers=sandbox.auth, timeout=60).status_code
            )
        )
        request.start()
        assert wait_until(waiting_on_a_lock, timeout=30)
    request.join(60)
    assert statuses == [503]


def waiting_on_a_lock() -> bool:
    with connections["default"].cursor() as cursor:
        # Statistics views are a snapshot for the whole transaction unless cleared.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


def test_a_counted_fault_fires_exactly_that_often_under_concurrency(sandbox: Sandbox) -> None:
    sandbox.control("faults", {"kinds": ["500"], "count": 5, "path": "/models$"})
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(
                lambda _: httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code,
                range(24),
            )
        )
    assert sorted(statuses).count(500) == 5 and statuses.count(200) == 19
    assert sandbox.control("faults", method="GET")["data"][0]["injected"] == 5


def test_503_and_429_with_retry_after(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    sandbox.control("faults", {"kinds": ["503"], "count": 1})
    with pytest.raises(openai.InternalServerError) as unavailable:
        sdk.models.list()
    assert unavailable.value.status_code == 503
    sandbox.control("faults", {"kinds": ["429"], "count": 1, "retry_after": 2})
    response = httpx.get(f"{sandbox.url}/models", headers=sandbox.auth)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2" and response.headers["retry-after-ms"] == "2000"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_sdk_retries_honour_injected_faults(sandbox: Sandbox) -> None:
    sandbox.control("faults", {"kinds": ["429"], "count": 2, "retry_after": 0.1})
    patient = make_client(sandbox.url, key=sandbox.key, max_retries=3)  # type: ignore[arg-type]
    assert patient.models.list().data  # two 429s, then success


def test_hang_past_the_timeout(sandbox: Sandbox) -> None:
    sandbox.control("faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 1.5})
    impatient = make_client(sandbox.url, key=sandbox.key, timeout=0.5)  # type: ignore[arg-type]
    # A timeout, not the 504 the sandbox sends when it lets go: the client gave up first.
    with pytest.raises(openai.APITimeoutError):
        impatient.models.list()
    # (The sandbox fixture waits for the held request to end before the next test.)


def test_dropped_connection(sandbox: Sandbox) -> None:
    sandbox.control("faults", {"kinds": ["drop"], "count": 1})
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{sandbox.url}/models", headers=sandbox.auth)
    assert httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code == 200


def test_failure_rate(sandbox: Sandbox) -> None:
    sandbox.control("faults", {"kinds": ["500", "503"], "rate": 0.5})
    statuses = [
        httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code for _ in range(60)
    ]
    failures = sum(s >= 500 for s in statuses)
    assert 12 <= failures <= 48, failures  # binomial(60, 0.5): far outside this is a bug
    assert sandbox.control("faults", method="DELETE")["deleted"] == 1
    assert httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code == 200


def test_fault_requests_are_validated(sandbox: Sandbox) -> None:
    response = httpx.post(
        f"{sandbox.url.removesuffix('/v1')}/control/faults",
        headers=sandbox.auth,
        json={"kinds": ["418"]},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "kinds"


class Receiver:
    """A local HTTP endpoint that records webhook deliveries."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.mark.worker
def test_webhook_signed_and_verified_by_the_sdk(
    sandbox: Sandbox, sdk: openai.OpenAI, receiver: Receiver, celery_worker: str
) -> None:
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    sandbox.control("account", {"webhook_url": receiver.url, "webhook_secret": secret})
    file_id = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert sdk.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    sdk.fine_tuning.jobs.retrieve(job.id)  # a second read must not deliver twice
    # One delivery per job and state (a unique row); once it is marked delivered, no task
    # sends it again: what has arrived by then is all that ever will.
    assert wait_until(
        lambda: SandboxWebhookDelivery.objects.filter(
            job_id=job.id, delivered_at__isnull=False
        ).exists(),
        timeout=30,
    )
    assert SandboxWebhookDelivery.objects.filter(job_id=job.id).count() == 1
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    event = sdk.webhooks.unwrap(body, headers, secret=secret)
    assert event.type == "fine_tuning.job.succeeded" and event.data.id == job.id
    assert json.loads(body)["object"] == "event"
    with pytest.raises(openai.InvalidWebhookSignatureError):
        sdk.webhooks.unwrap(body + b" ", headers, secret=secret)
    delivery = SandboxWebhookDelivery.objects.get(job_id=job.id)
    assert delivery.attempts == 1 and delivery.last_status == 200


@pytest.mark.worker
def test_cancelled_and_failed_webhooks(
    sandbox: Sandbox, sdk: openai.OpenAI, receiver: Receiver, celery_worker: str
) -> None:
    secret = "plain-text-secret"
    sandbox.control("account", {"webhook_url": receiver.url, "webhook_secret": secret})
    good = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    bad = sdk.files.create(file=("b.jsonl", io.BytesIO(b"not json\n" * 12)), purpose="fine-tune").id
    slow = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=good, metadata={"sandbox_seconds_per_step": "5"}
    )
    sdk.fine_tuning.jobs.cancel(slow.id)
    broken = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=bad)
    assert sdk.fine_tuning.jobs.retrieve(broken.id).status == "failed"
    assert wait_until(lambda: len(receiver.received) == 2, timeout=30)
    events = {
        sdk.webhooks.unwrap(body, headers, secret=secret).type
        for headers, body in receiver.received
    }
    assert events == {"fine_tuning.job.cancelled", "fine_tuning.job.failed"}
