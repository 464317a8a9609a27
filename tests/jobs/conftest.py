from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from datasets.models import Dataset
from datasets.services import dataset_create_from_upload, dataset_validate
from jobs.catalogs import catalog_refresh
from jobs.models import ProviderConnection
from jobs.services import connection_save
from tests.conftest import wait_until
from tests.sandbox.data import chat_examples, jsonl
from tests.support.proxy import FaultProxy


@pytest.fixture
def sandbox_connection(sandbox_url: str, sandbox_key: str) -> ProviderConnection:
    return connection_save(
        name="Sandbox", kind="sandbox", base_url=sandbox_url, api_key=sandbox_key
    )


@pytest.fixture
def together_connection(sandbox_url: str, sandbox_key: str) -> ProviderConnection:
    """A connection to the sandbox's Together-compatible API, its model list fetched (what
    the task its save queues does)."""
    connection = connection_save(
        name="Together", kind="together", api_key=sandbox_key,
        base_url=sandbox_url.removesuffix("/v1") + "/together/v1",
    )  # fmt: skip
    catalog_refresh(connection_id=connection.pk)
    return connection


@pytest.fixture
def fault_proxy(live_server, sandbox_url: str) -> Iterator[FaultProxy]:  # type: ignore[no-untyped-def]
    """A loopback proxy in front of the sandbox that loses answers on purpose
    (tests/support/proxy.py); ``proxied_connection`` goes through it."""
    with FaultProxy(live_server.url) as proxy:
        yield proxy


@pytest.fixture
def proxied_connection(fault_proxy: FaultProxy, sandbox_key: str) -> ProviderConnection:
    """The sandbox (this test's organisation) reached through ``fault_proxy``."""
    return connection_save(
        name="Sandbox via proxy", kind="sandbox", base_url=f"{fault_proxy.url}/sandbox/v1",
        api_key=sandbox_key,
    )  # fmt: skip


@pytest.fixture
def azure_connection(live_server, sandbox_url: str, sandbox_key: str) -> ProviderConnection:  # type: ignore[no-untyped-def]
    return connection_save(
        name="Azure", kind="azure_openai", base_url=f"{live_server.url}/sandbox/openai/v1",
        api_key=sandbox_key, api_version="2025-04-01-preview",
    )  # fmt: skip


def validated(dataset: Dataset) -> Dataset:
    """Validate now; a worker (when one runs) may hold the claim already: then wait for it."""
    dataset_validate(dataset_id=dataset.pk, model_id=dataset.requested_model_id)
    assert wait_until(
        lambda: (
            Dataset.objects.filter(pk=dataset.pk)
            .exclude(status__in=(Dataset.Status.UPLOADED, Dataset.Status.VALIDATING))
            .exists()
        ),
        timeout=60,
    )
    dataset.refresh_from_db()
    return dataset


@pytest.fixture
def make_dataset() -> Callable[..., Dataset]:
    """A stored and validated dataset, made the way an upload makes it."""

    def make(
        examples: list[dict] | None = None, *, raw: bytes | None = None, name: str = "train"
    ) -> Dataset:
        content = (
            raw
            if raw is not None
            else jsonl(examples if examples is not None else chat_examples(20))
        )
        outcome = dataset_create_from_upload(
            upload=SimpleUploadedFile(f"{name}.jsonl", content), name=name, uploaded_by=None
        )
        validated(outcome.dataset)
        return outcome.dataset

    return make
