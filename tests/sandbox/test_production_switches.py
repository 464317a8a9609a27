"""The sandbox on a production install: switched off (SANDBOX_ENABLED), its API, controls and
admin pages do not exist; switched on, its webhook URL must not reach internal addresses."""

from __future__ import annotations

import importlib
import io
from collections.abc import Iterator

import httpx
import openai
import pytest
from django.test import Client, override_settings
from django.urls import clear_url_caches

from sandbox import webhooks
from sandbox.models import SandboxAccount, SandboxWebhookDelivery
from tests.conftest import Sandbox
from tests.history.helpers import Receiver
from tests.permissions import client_for
from tests.sandbox.data import chat_examples, jsonl


def _reload_urlconf() -> None:
    import config.urls

    importlib.reload(config.urls)
    clear_url_caches()


@pytest.fixture
def sandbox_disabled() -> Iterator[None]:
    with override_settings(SANDBOX_ENABLED=False):
        _reload_urlconf()
        try:
            yield
        finally:
            pass
    _reload_urlconf()


@pytest.mark.django_db
def test_disabled_sandbox_does_not_exist(sandbox_key: str, sandbox_disabled: None) -> None:
    auth = {"HTTP_AUTHORIZATION": f"Bearer {sandbox_key}"}
    client = Client()
    for method, path in [
        ("get", "/sandbox/control/faults"),
        ("post", "/sandbox/control/faults"),
        ("post", "/sandbox/control/account"),
        ("get", "/sandbox/control/completions"),
        ("get", "/sandbox/v1/models"),
        ("post", "/sandbox/v1/fine_tuning/jobs"),
        ("get", "/sandbox/openai/v1/models"),
    ]:
        response = getattr(client, method)(path, **auth)
        assert response.status_code == 404, (method, path)
        assert b"No such" not in response.content and b'"error"' not in response.content
    assert not SandboxAccount.objects.exists()

    staff = client_for("staff")
    index = staff.get("/admin/").content.decode()
    assert "/admin/sandbox/" not in index and "/admin/jobs/" in index
    for page in ("sandboxfault", "sandboxaccount", "sandboxjob"):
        assert staff.get(f"/admin/sandbox/{page}/").status_code == 403


@pytest.mark.django_db
def test_enabled_sandbox_answers(sandbox_key: str) -> None:
    # The counterpart of the test above, so that its 404s cannot come from a broken key.
    auth = {"HTTP_AUTHORIZATION": f"Bearer {sandbox_key}"}
    assert Client().get("/sandbox/v1/models", **auth).status_code == 200
    assert client_for("staff").get("/admin/sandbox/sandboxfault/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_webhook_url_must_not_reach_internal_addresses(sandbox: Sandbox, settings) -> None:  # type: ignore[no-untyped-def]
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    control = sandbox.url.removesuffix("/v1") + "/control/account"
    for url in ("http://127.0.0.1:8000/webhooks/1/", "http://169.254.169.254/", "http://[::1]/"):
        response = httpx.post(control, headers=sandbox.auth, json={"webhook_url": url})
        assert response.status_code == 400, url
        error = response.json()["error"]
        assert error["param"] == "webhook_url" and error["type"] == "invalid_request_error"
        assert "webhooks may not reach" in error["message"]
    assert sandbox.control("account", method="GET")["webhook_url"] == ""
    too_long = httpx.post(
        control, headers=sandbox.auth, json={"webhook_url": "https://a.example/" + "x" * 600}
    )
    assert too_long.status_code == 400 and too_long.json()["error"]["param"] == "webhook_url"
    public = sandbox.control("account", {"webhook_url": "https://93.184.215.14/hook"})
    assert public["webhook_url"] == "https://93.184.215.14/hook"


@pytest.mark.django_db(transaction=True)
def test_delivery_refused_when_the_target_became_internal(
    sandbox: Sandbox, settings, sdk: openai.OpenAI
) -> None:  # type: ignore[no-untyped-def]
    receiver = Receiver()
    try:
        sandbox.control("account", {"webhook_url": receiver.url, "webhook_secret": "s"})
        file_id = sdk.files.create(
            file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
        ).id
        job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
        assert sdk.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
        delivery = SandboxWebhookDelivery.objects.get(job_id=job.id)
        settings.WEBHOOK_ALLOWED_NETWORKS = []
        assert webhooks.delivery_attempt(delivery_id=delivery.id) is False
        delivery.refresh_from_db()
        assert delivery.delivered_at is None and delivery.attempts == 1
        assert delivery.last_error.startswith("refused: 127.0.0.1 resolves to 127.0.0.1")
        assert receiver.received == []
        # Switched off, the sandbox sends nothing, whatever the target.
        settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
        settings.SANDBOX_ENABLED = False
        assert webhooks.delivery_attempt(delivery_id=delivery.id) is False
        assert receiver.received == []
        settings.SANDBOX_ENABLED = True
        assert webhooks.delivery_attempt(delivery_id=delivery.id) is True
        assert len(receiver.received) == 1
    finally:
        receiver.close()
