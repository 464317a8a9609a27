"""A worker killed with SIGKILL in the middle of a piece of work loses none of it.

Each test holds the work mid-way with a gate it controls (a dataset file that is a named pipe
the test feeds, a provider request the sandbox holds), kills the worker process that runs it,
and waits on the database until another worker has finished the work. Two ways back: a pool
process killed under a live worker has its task delivered again by that worker at once (the
new delivery must take over from the dead owner); a whole worker killed leaves its message
unacknowledged for the visibility timeout, and the reaper on beat sends the work again."""

from __future__ import annotations

import errno
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from config.celery import app
from datasets.models import Dataset
from datasets.services import dataset_create_from_upload
from jobs.connections import provider_for_connection
from jobs.models import Job
from tests.conftest import APP_QUEUES, Sandbox, wait_until
from tests.datasets.helpers import chat_file
from tests.jobs.test_launch_and_poll import launched

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

QUEUES = ",".join((*APP_QUEUES, "doomed"))
Status = Dataset.Status


class HeldFile:
    """A dataset's stored file swapped for a named pipe the test feeds: the validation reads
    what it is given, then waits mid-file for as long as the test holds the pipe open."""

    PIECE = 64 * 1024

    def __init__(self, path: Path) -> None:
        self.path = path
        self.content = path.read_bytes()
        self.full = path.with_name(path.name + ".full")
        self.pause = threading.Event()
        self.paused = threading.Event()
        self.release = threading.Event()
        os.replace(path, self.full)
        os.mkfifo(path)
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        fd = None
        while fd is None and not self.release.is_set():
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # no reader yet
                if exc.errno != errno.ENXIO:
                    raise
                time.sleep(0.01)
        if fd is None:
            return
        os.set_blocking(fd, True)
        try:
            for start in range(0, len(self.content), self.PIECE):
                if self.pause.is_set():
                    break
                os.write(fd, self.content[start : start + self.PIECE])
                # Paced, so the reader reports progress well before the end of the file.
                time.sleep(0.01)
            self.paused.set()
            self.release.wait()
        except BrokenPipeError:
            self.paused.set()
        finally:
            os.close(fd)

    def hold(self) -> None:
        """Stop feeding (the pipe stays open: the reader waits) and put the whole file back
        in place for whoever reads it next."""
        self.pause.set()
        assert self.paused.wait(30)
        os.replace(self.full, self.path)

    def close(self) -> None:
        self.release.set()
        self.thread.join(10)
        if self.full.exists():
            os.replace(self.full, self.path)


def queued_dataset(lines: int) -> Dataset:
    """A stored dataset whose validation is queued (its message goes to the validation queue
    on commit, which autocommit reaches at once)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    outcome = dataset_create_from_upload(
        upload=SimpleUploadedFile("big.jsonl", chat_file(lines)), name="big", uploaded_by=None
    )
    return outcome.dataset


def running_task_pid(hostname: str, task: str) -> int:
    """The pool process of ``hostname`` running ``task``."""
    found: list[int] = []

    def look() -> bool:
        replies = app.control.inspect(destination=[hostname], timeout=2).active() or {}
        found[:] = [t["worker_pid"] for t in replies.get(hostname, []) if t["name"] == task]
        return bool(found)

    assert wait_until(look, timeout=30)
    return found[0]


def validated(dataset: Dataset, timeout: float = 60) -> Dataset:
    assert wait_until(
        lambda: (
            Dataset.objects.get(pk=dataset.pk).status not in (Status.UPLOADED, Status.VALIDATING)
        ),
        timeout=timeout,
    ), (
        Dataset.objects.filter(pk=dataset.pk)
        .values("status", "lease_owner", "progress_bytes")
        .first()
    )
    return Dataset.objects.get(pk=dataset.pk)


@pytest.fixture
def held_dataset():  # type: ignore[no-untyped-def]
    """A big queued dataset (~9 MB) whose file is held by the test (``HeldFile``)."""
    held: list[HeldFile] = []

    def make() -> tuple[Dataset, HeldFile]:
        dataset = queued_dataset(90_000)
        held.append(HeldFile(Path(dataset.file.path)))
        return dataset, held[-1]

    yield make
    for gate in held:
        gate.close()
        gate.path.unlink(missing_ok=True)


def test_pool_process_killed_mid_validation_redelivered_task_takes_over(
    spawn, held_dataset
) -> None:  # type: ignore[no-untyped-def]
    dataset, gate = held_dataset()
    worker = spawn("worker", "validator", queues=QUEUES)
    # Progress is written while the file is read: the validation is under way.
    assert wait_until(lambda: Dataset.objects.get(pk=dataset.pk).progress_bytes > 0, timeout=60), (
        worker.tail()
    )
    gate.hold()
    before = Dataset.objects.get(pk=dataset.pk)
    assert before.status == Status.VALIDATING and 0 < before.progress_bytes < dataset.size
    assert before.lease_owner
    pid = running_task_pid("validator@localhost", "datasets.tasks.dataset_validate")
    os.kill(pid, signal.SIGKILL)
    # The worker delivers the task again at once (acks_late + reject_on_worker_lost); the new
    # delivery finds the owner's session gone and validates the whole file.
    dataset = validated(dataset)
    assert dataset.status == Status.VALID, (dataset.error_message, worker.tail())
    assert dataset.n_examples == 90_000 and dataset.progress_bytes == dataset.size
    assert dataset.lease_owner == "" and dataset.lease_expires_at is None
    assert before.lease_owner != Dataset.objects.get(pk=dataset.pk).lease_owner


def test_worker_killed_mid_validation_reaper_sends_it_again(spawn, held_dataset) -> None:  # type: ignore[no-untyped-def]
    dataset, gate = held_dataset()
    doomed = spawn("worker", "doomed", queues="validation")
    assert wait_until(lambda: Dataset.objects.get(pk=dataset.pk).progress_bytes > 0, timeout=60), (
        doomed.tail()
    )
    gate.hold()
    doomed.kill()  # the worker and its pool processes: the message stays unacknowledged
    assert Dataset.objects.get(pk=dataset.pk).status == Status.VALIDATING
    # The visibility timeout (default: the task time limit + 60 s) is far away; the reaper
    # sees the owner's session gone and sends the validation again.
    heir = spawn("worker", "heir", queues=QUEUES)
    spawn("beat", HEARTBEAT_INTERVAL="1")
    dataset = validated(dataset)
    assert dataset.status == Status.VALID, (dataset.error_message, heir.tail())
    assert dataset.n_examples == 90_000


def test_worker_killed_mid_launch_reaper_sends_it_again_one_provider_job(
    sandbox: Sandbox, sandbox_connection, make_dataset, spawn
) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(name="train")
    # The launch is held inside its file upload (after its look-up found no job), then dies.
    sandbox.control("faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 5, "path": "/files$"})
    doomed = spawn("worker", "doomed", queues="provider", PROVIDER_READ_TIMEOUT="30")
    job = launched(sandbox_connection, dataset)
    assert wait_until(
        lambda: sandbox.control("faults", method="GET")["data"][0]["injected"] == 1, timeout=30
    ), doomed.tail()
    doomed.kill()
    interrupted = Job.objects.get(pk=job.pk)
    assert interrupted.status == Job.Status.LAUNCHING and interrupted.provider_job_id is None
    assert interrupted.lease_owner

    heir = spawn("worker", "heir", queues=QUEUES)
    spawn("beat", HEARTBEAT_INTERVAL="1")
    # The provider id is stored before the lease is let go, so wait for both.
    assert wait_until(
        lambda: Job.objects.filter(
            pk=job.pk, provider_job_id__isnull=False, lease_owner="", lease_expires_at__isnull=True
        ).exists(),
        timeout=60,
    ), (
        Job.objects.filter(pk=job.pk).values().first(),
        heir.tail(),
    )
    job.refresh_from_db()
    theirs = provider_for_connection(sandbox_connection).list_jobs(limit=100).data
    assert [j.id for j in theirs] == [job.provider_job_id]  # one job, no duplicate
