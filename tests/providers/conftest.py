"""Fixtures for the provider-client tests: a live sandbox (reused from the sandbox tests),
clients built on it, and the sandbox's own controls (faults, profile)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from jobs.providers import ConnectionConfig, JobInfo, OpenAICompatibleProvider, close_all
from tests.conftest import Sandbox
from tests.sandbox.data import chat_examples, jsonl
from tests.support.proxy import FaultProxy


def make_config(base_url: str, api_key: str, **overrides: Any) -> ConnectionConfig:
    # Tiny backoff keeps retry tests fast without replacing the sleep itself.
    values: dict[str, Any] = {
        "kind": "sandbox",
        "base_url": base_url,
        "api_key": api_key,
        "timeout_connect": 2.0,
        "timeout_read": 10.0,
        "max_retries": 4,
        "backoff_base": 0.01,
        "backoff_max": 0.05,
    }
    values.update(overrides)
    return ConnectionConfig(**values)


@pytest.fixture(autouse=True)
def _drop_cached_clients() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def make_provider(
    sandbox_url: str, sandbox_key: str
) -> Iterator[Callable[..., OpenAICompatibleProvider]]:
    made: list[OpenAICompatibleProvider] = []

    def make(
        *, base_url: str | None = None, adapter: dict[str, Any] | None = None, **overrides: Any
    ) -> OpenAICompatibleProvider:
        overrides.setdefault("api_key", sandbox_key)
        provider = OpenAICompatibleProvider(
            make_config(base_url or sandbox_url, **overrides), **(adapter or {})
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture
def provider(make_provider: Callable[..., OpenAICompatibleProvider]) -> OpenAICompatibleProvider:
    return make_provider()


@pytest.fixture
def inject(sandbox: Sandbox) -> Iterator[Callable[..., dict]]:
    """Adds a sandbox fault (see sandbox/views/control.py) for this test's key; all are
    cleared afterwards."""

    def add(**fault: Any) -> dict:
        return sandbox.control("faults", fault)

    yield add
    sandbox.control("faults", method="DELETE")


@pytest.fixture
def set_profile(sandbox: Sandbox) -> Callable[[str], None]:
    def set_(profile: str) -> None:
        sandbox.control("account", {"profile": profile})

    return set_


@pytest.fixture
def training_file(provider: OpenAICompatibleProvider) -> str:
    return upload_bytes(provider, jsonl(chat_examples(20)))


def upload_bytes(
    provider: OpenAICompatibleProvider, content: bytes, *, name: str = "train.jsonl"
) -> str:
    import io

    return provider.upload_file(filename=name, stream=io.BytesIO(content), size=len(content)).id


def record_requests(provider: OpenAICompatibleProvider) -> list[httpx.Request]:
    """Every request the provider's client sends from now on, as it went on the wire."""
    sent: list[httpx.Request] = []
    provider.http_client.event_hooks["request"].append(sent.append)
    return sent


def wait_for_status(
    provider: OpenAICompatibleProvider, job_id: str, statuses: set[str], timeout: float = 20
) -> JobInfo:
    deadline = time.monotonic() + timeout
    while True:
        job = provider.retrieve_job(job_id)
        if job.status in statuses:
            return job
        if job.status in ("succeeded", "failed", "cancelled"):
            raise AssertionError(f"job {job_id} ended {job.status}: {job.error}")
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.status} after {timeout} s")
        time.sleep(0.05)


@pytest.fixture
def fault_proxy(live_server, sandbox_url: str) -> Iterator[FaultProxy]:  # type: ignore[no-untyped-def]
    """A loopback proxy in front of the sandbox (tests/support/proxy.py); clients reach the
    sandbox through it at ``fault_proxy.url + "/sandbox/v1"``."""
    with FaultProxy(live_server.url) as proxy:
        yield proxy
