"""Validation: through a real Celery worker for the flow, in-process for the edge cases."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone

from datasets import services
from datasets.models import BaseModel, Dataset
from datasets.validation import get_default_model, validate_stream
from tests.conftest import Spawned, wait_until
from tests.datasets.helpers import (
    GPT4O,
    GPT4O_MINI,
    GPT35,
    chat_file,
    create_dataset,
    upload,
    validate_now,
)
from tests.leases import foreign_owner
from tests.permissions import make_user

Status = Dataset.Status


@pytest.fixture
def worker_files() -> Iterator[None]:
    """Worker tests share MEDIA_ROOT with the worker; remove what they stored."""
    yield
    for dataset in Dataset.objects.all():
        default_storage.delete(dataset.file.name)


def _done(pk: int) -> bool:
    return Dataset.objects.get(pk=pk).status not in (Status.UPLOADED, Status.VALIDATING)


def _member_client() -> Client:
    client = Client()
    client.force_login(make_user("member"))
    return client


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_upload_is_validated_by_the_worker(
    celery_worker: str, cookbook: Path, worker_files: None
) -> None:
    client = _member_client()
    content = (cookbook / "drone_training.jsonl").read_bytes()
    response = upload(client, content, file_name="drone.jsonl", model=GPT4O_MINI)
    assert response.status_code == 302
    dataset = Dataset.objects.get()
    assert wait_until(lambda: _done(dataset.pk), timeout=60), Dataset.objects.get().status
    dataset.refresh_from_db()
    assert dataset.status == Status.VALID, dataset.error_message
    assert (dataset.format, dataset.n_examples) == ("chat_tools", 103)
    assert dataset.progress_bytes == dataset.progress_total == len(content)
    assert dataset.report_model_id == GPT4O_MINI and dataset.claim is None
    report = dataset.report
    assert report["n_examples"] == 103 and report["is_valid"] is True
    assert report["estimates"]["billed_tokens"] == 3 * 78110
    assert report["estimates"]["training_cost"] == "0.70299"
    # The same report as the engine gives for the same file and model.
    with (cookbook / "drone_training.jsonl").open("rb") as fh:
        expected = validate_stream(fh, model=get_default_model(GPT4O_MINI)).to_dict()
    assert report == expected
    status = client.get(f"/datasets/{dataset.pk}/status.json").json()
    assert status == {
        "status": "valid",
        "progress_bytes": len(content),
        "progress_total": len(content),
        "percent": 100.0,
        "done": True,
        "error": "",
    }


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_invalid_file_ends_invalid_with_counts(
    celery_worker: str, cookbook: Path, worker_files: None
) -> None:
    client = _member_client()
    upload(client, (cookbook / "01-testing-example.jsonl").read_bytes(), file_name="pretty.jsonl")
    dataset = Dataset.objects.get()
    assert wait_until(lambda: _done(dataset.pk), timeout=60)
    dataset.refresh_from_db()
    assert dataset.status == Status.INVALID
    assert dataset.n_examples == 0 and dataset.format == "unknown"
    counts = {g["code"]: g["count"] for g in dataset.report["findings"]}
    assert counts == {"invalid_json": 202, "too_few_examples": 1, "blank_line": 5}
    page = client.get(f"/datasets/{dataset.pk}/")
    assert b"Not valid JSON" in page.content and b"\xc3\x97 202" in page.content


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_revalidation_recomputes_or_runs_the_task(celery_worker: str, worker_files: None) -> None:
    client = _member_client()
    upload(client, chat_file(60), model=GPT4O_MINI)
    dataset = Dataset.objects.get()
    assert wait_until(lambda: _done(dataset.pk), timeout=60)
    dataset.refresh_from_db()
    first_validated = dataset.validated_at
    mini_cost = Decimal(dataset.report["estimates"]["training_cost"])

    # Same tokenizer (o200k_base): re-priced at once, without the file or the worker.
    response = client.post(f"/datasets/{dataset.pk}/revalidate/", {"model": GPT4O})
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert dataset.status == Status.VALID and dataset.report_model_id == GPT4O
    assert dataset.validation_started_at < first_validated  # no new run
    gpt4o_cost = Decimal(dataset.report["estimates"]["training_cost"])
    assert gpt4o_cost == mini_cost * 25 / 3

    # Another tokenizer (cl100k_base): a new validation run on the worker.
    response = client.post(f"/datasets/{dataset.pk}/revalidate/", {"model": GPT35})
    assert response.status_code == 302
    assert wait_until(
        lambda: _done(dataset.pk) and Dataset.objects.get(pk=dataset.pk).report_model_id == GPT35,
        timeout=60,
    )
    dataset.refresh_from_db()
    assert dataset.status == Status.VALID
    assert dataset.report["tokens"]["encoding"] == "cl100k_base"
    assert dataset.validation_started_at > first_validated
    assert dataset.progress_bytes == dataset.progress_total == dataset.size


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_progress_is_published_while_validating(celery_worker: str, worker_files: None) -> None:
    client = _member_client()
    big = chat_file(120_000)  # ~10 MB: a few seconds of validation
    upload(client, big, file_name="big.jsonl")
    dataset = Dataset.objects.get()
    seen: list[float] = []

    def poll() -> bool:
        status = client.get(f"/datasets/{dataset.pk}/status.json").json()
        if status["status"] == "validating":
            seen.append(status["percent"])
        return status["done"]

    assert wait_until(poll, timeout=120, interval=0.05)
    assert any(0 < p < 100 for p in seen), seen
    assert seen == sorted(seen)
    dataset.refresh_from_db()
    assert dataset.status == Status.VALID
    assert dataset.progress_bytes == dataset.progress_total == len(big)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_celery_task_validates_in_worker_processes_of_its_own(
    spawn: Callable[..., Spawned], worker_files: None
) -> None:
    # VALIDATION_PARALLEL_MIN_MB=0: this small file goes the way a large one does, from a
    # Celery prefork pool process.
    worker = spawn(
        "worker",
        "parallel",
        queues="validation",
        VALIDATION_PROCESSES="2",
        VALIDATION_PARALLEL_MIN_MB="0",
    )
    client = _member_client()
    # ~2 MB, cut in blocks of 256 KB or more: the forked worker takes the first ones at once.
    content = chat_file(20_000) + chat_file(2)  # the first two examples again at the end
    upload(client, content, model=GPT4O_MINI)
    dataset = Dataset.objects.get()
    assert wait_until(lambda: _done(dataset.pk), timeout=120), worker.tail()
    dataset.refresh_from_db()
    assert dataset.status == Status.VALID, (dataset.error_message, worker.tail())
    assert dataset.progress_bytes == dataset.size == len(content)
    # The report the single pass makes, duplicates included.
    expected = validate_stream(content, model=get_default_model(GPT4O_MINI))
    assert dataset.report == expected.to_dict()
    assert expected.lines("duplicate_example") == [20_001, 20_002]
    # Blocks went to a worker process the task's process started (parallel.py logs who did
    # what), and it is gone once the validation is over.
    done = re.search(
        r"validated (\d+) bytes in \d+ blocks: \d+ here, (\d+) in worker processes \[(\d+)\]",
        worker.tail(),
    )
    assert done, worker.tail()
    assert int(done[1]) == len(content) and int(done[2]) >= 1
    assert not psutil.pid_exists(int(done[3])) or psutil.Process(int(done[3])).status() == (
        psutil.STATUS_ZOMBIE
    )


# --- in-process service behaviour --------------------------------------------------------------


@pytest.mark.django_db
def test_running_twice_validates_once() -> None:
    dataset = create_dataset(chat_file(20))
    model = dataset.requested_model_id
    assert services.dataset_validate(dataset_id=dataset.pk, model_id=model) is True
    stamp = Dataset.objects.get(pk=dataset.pk).validated_at
    assert services.dataset_validate(dataset_id=dataset.pk, model_id=model) is False
    assert Dataset.objects.get(pk=dataset.pk).validated_at == stamp


@pytest.mark.django_db
def test_a_superseded_task_does_nothing() -> None:
    dataset = create_dataset(chat_file(20))
    # The member asked for gpt-4o after the gpt-4o-mini task was queued.
    Dataset.objects.filter(pk=dataset.pk).update(requested_model_id=GPT4O)
    assert services.dataset_validate(dataset_id=dataset.pk, model_id=GPT4O_MINI) is False
    assert Dataset.objects.get(pk=dataset.pk).status == Status.UPLOADED
    assert services.dataset_validate(dataset_id=dataset.pk, model_id=GPT4O) is True


@pytest.mark.django_db
def test_a_validation_whose_owner_died_is_taken_over_a_live_one_is_not() -> None:
    dataset = create_dataset(chat_file(20))
    model = dataset.requested_model_id
    with foreign_owner() as other:
        # Another worker validates it, with a fresh lease and no progress for ages.
        Dataset.objects.filter(pk=dataset.pk).update(
            status=Status.VALIDATING,
            claim=uuid.uuid4(),
            progress_at=timezone.now() - timedelta(minutes=5),
            lease_owner=other.owner,
            lease_expires_at=timezone.now() + timedelta(minutes=1),
        )
        assert services.dataset_validate(dataset_id=dataset.pk, model_id=model) is False
        other.die()  # its process is killed: the server drops its session at once
        assert services.dataset_validate(dataset_id=dataset.pk, model_id=model) is True
    dataset.refresh_from_db()
    assert dataset.status == Status.VALID and dataset.lease_owner == ""
    assert dataset.lease_expires_at is None


@pytest.mark.django_db
def test_progress_publisher_throttles_and_stops_when_superseded() -> None:
    dataset = create_dataset(chat_file(20))
    claim = uuid.uuid4()
    Dataset.objects.filter(pk=dataset.pk).update(status=Status.VALIDATING, claim=claim)
    publish = services.ProgressPublisher(dataset.pk, claim, every=3600)
    publish(100)  # within the interval: no write
    assert Dataset.objects.get(pk=dataset.pk).progress_bytes == 0 and publish.writes == 0
    publish = services.ProgressPublisher(dataset.pk, claim, every=0)
    publish(100)
    assert Dataset.objects.get(pk=dataset.pk).progress_bytes == 100 and publish.writes == 1
    Dataset.objects.filter(pk=dataset.pk).update(claim=uuid.uuid4())
    with pytest.raises(services.ClaimLost):
        publish(200)
    assert Dataset.objects.get(pk=dataset.pk).progress_bytes == 100


@pytest.mark.django_db
def test_unreadable_file_ends_in_error_with_a_message() -> None:
    dataset = create_dataset(chat_file(20))
    Path(dataset.file.path).unlink()
    assert (
        services.dataset_validate(dataset_id=dataset.pk, model_id=dataset.requested_model_id)
        is False
    )
    dataset.refresh_from_db()
    assert dataset.status == Status.ERROR
    assert (
        dataset.error_message == "The dataset file could not be read (No such file or directory)."
    )
    assert dataset.claim is None


@pytest.mark.django_db
def test_recompute_request_needs_no_worker_and_queue_request_resets() -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    assert (
        services.dataset_validation_request(dataset=dataset, model=BaseModel.objects.get(pk=GPT4O))
        == "recomputed"
    )
    dataset.refresh_from_db()
    assert (dataset.status, dataset.report_model_id) == (Status.VALID, GPT4O)
    assert (
        services.dataset_validation_request(dataset=dataset, model=BaseModel.objects.get(pk=GPT35))
        == "queued"
    )
    dataset.refresh_from_db()
    assert (dataset.status, dataset.requested_model_id, dataset.progress_bytes) == (
        Status.UPLOADED,
        GPT35,
        0,
    )
    # The stored report stays until the new one replaces it.
    assert dataset.report_model_id == GPT4O and dataset.report is not None
    assert services.dataset_validate(dataset_id=dataset.pk, model_id=GPT35) is True
    dataset.refresh_from_db()
    assert dataset.report["tokens"]["encoding"] == "cl100k_base"


@pytest.mark.django_db
def test_forced_request_reads_the_file_again() -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    model = BaseModel.objects.get(pk=GPT4O_MINI)
    assert services.dataset_validation_request(dataset=dataset, model=model, force=True) == "queued"
    assert Dataset.objects.get(pk=dataset.pk).status == Status.UPLOADED
