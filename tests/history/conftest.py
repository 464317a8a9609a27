from __future__ import annotations

import importlib
from collections.abc import Iterator

import openai
import pytest
from django.apps import apps as django_apps

from datasets.models import BaseModel
from jobs.models import ProviderConnection
from jobs.services import connection_save
from tests.history.helpers import WEBHOOK_SECRET, Receiver, make_history
from tests.jobs.conftest import make_dataset  # noqa: F401 - fixture
from tests.sandbox.conftest import make_client


@pytest.fixture(autouse=True)
def _catalog(request: pytest.FixtureRequest) -> None:
    """Transactional tests flush the seeded base-model catalog; put it back when gone."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        return
    transactional = marker.kwargs.get("transaction", False)
    request.getfixturevalue("transactional_db" if transactional else "db")
    if not BaseModel.objects.exists():
        importlib.import_module("datasets.migrations.0002_seed_base_models").seed(django_apps, None)


@pytest.fixture
def sdk(sandbox_url: str, sandbox_key: str) -> openai.OpenAI:
    return make_client(sandbox_url, key=sandbox_key)


@pytest.fixture
def sandbox_connection(sandbox_url: str, sandbox_key: str) -> ProviderConnection:
    return connection_save(
        name="Sandbox", kind="sandbox", base_url=sandbox_url, api_key=sandbox_key,
        webhook_secret=WEBHOOK_SECRET,
    )  # fmt: skip


@pytest.fixture
def history(sdk: openai.OpenAI):  # type: ignore[no-untyped-def]
    """Fine-tuning history made at the provider without Tuneboard (see make_history)."""
    return make_history(sdk)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()
