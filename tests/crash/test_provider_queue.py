"""A provider that hangs holds up only provider work: validations and the heartbeat keep
moving, and /healthz tells a busy worker from a dead beat. The hanging provider is a socket
the test holds: it accepts connections and answers nothing until the test lets go."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone

from core.models import Heartbeat
from datasets.models import Dataset
from datasets.services import dataset_create_from_upload
from jobs.services import connection_save
from tests.conftest import wait_until
from tests.datasets.helpers import chat_file
from tests.jobs.test_launch_and_poll import launched
from tests.permissions import client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


class HeldProvider:
    """Accepts connections and holds them, unanswered, until ``release()``."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.held: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with self.lock:
                self.held.append(conn)

    def holding(self) -> int:
        with self.lock:
            return len(self.held)

    def release(self) -> None:
        self.server.close()
        with self.lock:
            for conn in self.held:
                conn.close()


@pytest.fixture
def held_provider() -> Iterator[HeldProvider]:
    """Requested after ``spawn``, so it lets go before the workers are stopped."""
    provider = HeldProvider()
    try:
        yield provider
    finally:
        provider.release()


def hanging_launches(held: HeldProvider, make_dataset, count: int) -> None:  # type: ignore[no-untyped-def]
    connection = connection_save(
        name="Hanging", kind="sandbox", base_url=f"http://127.0.0.1:{held.port}/v1", api_key="k"
    )
    dataset = make_dataset(name="train")
    for _ in range(count):
        launched(connection, dataset)
    # Every provider worker process sits in a request the provider never answers.
    assert wait_until(lambda: held.holding() >= count, timeout=30)


def test_hanging_provider_delays_no_validation_and_no_heartbeat(
    spawn, make_dataset, held_provider: HeldProvider
) -> None:  # type: ignore[no-untyped-def]
    # As `make run` starts them: one worker for the provider queue, one for the rest.
    spawn("worker", "provider", queues="provider", PROVIDER_READ_TIMEOUT="60")
    spawn("worker", "main", queues="default,polling,validation")
    hanging_launches(held_provider, make_dataset, 2)
    since = timezone.now()
    spawn("beat", HEARTBEAT_INTERVAL="1")
    upload = SimpleUploadedFile("fresh.jsonl", chat_file(50, start=1000))
    dataset = dataset_create_from_upload(upload=upload, name="fresh", uploaded_by=None).dataset
    assert wait_until(
        lambda: Dataset.objects.get(pk=dataset.pk).status == Dataset.Status.VALID, timeout=60
    )
    # Beat's own tick and the heartbeat task both came through after the hang began.
    assert wait_until(
        lambda: (
            Heartbeat.objects.filter(name__in=("beat", "worker"), last_seen__gt=since).count() == 2
        ),
        timeout=30,
    )
    assert held_provider.holding() == 2  # still hanging: nothing above waited for it
    body = Client().get("/healthz").json()
    assert body["beat"]["ok"] is True and body["workers"]["ok"] is True


def test_healthz_tells_busy_workers_from_a_dead_beat(
    settings, spawn, make_dataset, held_provider: HeldProvider
) -> None:  # type: ignore[no-untyped-def]
    settings.HEARTBEAT_STALE_AFTER = timedelta(seconds=3)
    # One worker for everything, both its processes stuck at the provider: the heartbeat
    # task waits in the queue behind nothing it can reach.
    spawn("worker", "solo", queues="default,provider", PROVIDER_READ_TIMEOUT="60")
    hanging_launches(held_provider, make_dataset, 2)
    spawn("beat", HEARTBEAT_INTERVAL="1")
    assert wait_until(lambda: Heartbeat.objects.filter(name="beat").exists(), timeout=30)

    def workers() -> dict:  # type: ignore[type-arg]
        body = Client().get("/healthz").json()
        assert body["beat"]["ok"] is True, body  # beat ticks whatever the workers do
        return body["workers"]  # type: ignore[no-any-return]

    assert wait_until(lambda: workers().get("busy") is True, timeout=30)
    check = workers()
    assert check["ok"] is True and check["answering"] == 1
    assert check["waiting"] >= 1
    assert "Busy" in client_for("viewer").get("/system/").content.decode()
