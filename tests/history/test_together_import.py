"""A Together connection's history imported over real HTTP from the sandbox's
Together-compatible API: every job with its events, metrics (from Together's own metrics
endpoint), checkpoints and files; Together's words kept beside Tuneboard's lifecycle; a second
import adds nothing; a job launched from Tuneboard is recognised by its suffix marker."""

from __future__ import annotations

import hashlib
import io
import time
import uuid
from typing import Any

import pytest

from jobs import history as history_service
from jobs.models import Checkpoint, Job, JobEvent, MetricPoint
from jobs.providers import ConnectionConfig, JobSpec, TogetherProvider
from jobs.services import connection_save
from jobs.sync import job_sync
from tests.history.helpers import settle_datasets, snapshot
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


@pytest.fixture
def together_url(sandbox_url: str) -> str:
    return sandbox_url.removesuffix("/v1") + "/together/v1"


@pytest.fixture
def together(together_url: str, sandbox_key: str) -> Any:
    provider = TogetherProvider(
        ConnectionConfig(
            kind="together", base_url=together_url, api_key=sandbox_key, backoff_base=0.01
        )
    )
    yield provider
    provider.close()


def upload(provider: TogetherProvider, content: bytes, name: str) -> str:
    sha = hashlib.sha256(content).hexdigest()
    return provider.upload_file(
        filename=name, stream=io.BytesIO(content), size=len(content), sha256=sha
    ).id


def settle(provider: TogetherProvider, job_id: str) -> None:
    deadline = time.monotonic() + 30
    while provider.retrieve_job(job_id).status not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_together_history_is_imported_whole_and_once(
    together: TogetherProvider, together_url: str, sandbox_key: str, settings: Any
) -> None:
    train = upload(together, jsonl(chat_examples(24)), "train.jsonl")
    valid = upload(together, jsonl(chat_examples(12, seed=5)), "valid.jsonl")
    done = together.create_job(
        JobSpec(
            model=MODEL, training_file=train, validation_file=valid, suffix="hist", seed=3,
            hyperparameters={"n_epochs": 2, "learning_rate": 3e-5, "n_evals": 2, "lora_r": 16},
        )
    )  # fmt: skip
    settle(together, done.id)
    settings.SANDBOX_SECONDS_PER_STEP = 60
    stopped = together.create_job(JobSpec(model=MODEL, training_file=train))
    together.cancel_job(stopped.id)

    connection = connection_save(
        name="Together", kind="together", base_url=together_url, api_key=sandbox_key
    )
    run = history_service.import_now(connection=connection, user=None)
    assert run.status == "succeeded", run.errors
    assert (run.jobs_total, run.jobs_created, run.files_downloaded) == (2, 2, 2)

    finished = Job.objects.get(provider_job_id=done.id)
    assert (finished.status, finished.provider_status) == ("succeeded", "completed")
    assert finished.fine_tuned_model.startswith("sandbox/") and finished.seed == 3
    assert finished.hyperparameters["learning_rate"] == 3e-5
    assert (
        finished.hyperparameters["lora_r"] == 16
        and finished.hyperparameters["training_type"] == "lora"
    )
    assert finished.method == "supervised" and finished.suffix.startswith("hist")
    points = MetricPoint.objects.filter(job=finished).order_by("step")
    total = together.list_metrics(done.id)
    assert points.count() == len(total) == finished.last_step
    assert [p.step for p in points] == list(range(1, len(total) + 1))
    assert all(p.train_loss is not None for p in points)
    assert (
        points.exclude(full_valid_loss=None).exists() and finished.best_full_valid_loss is not None
    )
    assert "learning_rate" in points.last().extra
    steps = sorted(Checkpoint.objects.filter(job=finished).values_list("step", flat=True))
    assert steps == sorted(c.step_number for c in together.list_checkpoints(done.id).data)
    events = JobEvent.objects.filter(job=finished)
    assert events.count() == len(together.list_events(done.id, limit=1000).data)
    assert set(events.values_list("type", flat=True)) >= {
        "job_pending",
        "training_start",
        "job_complete",
    }
    assert finished.training_dataset is not None and finished.validation_dataset is not None

    cancelled = Job.objects.get(provider_job_id=stopped.id)
    assert (cancelled.status, cancelled.provider_status) == ("cancelled", "cancelled")
    assert cancelled.training_dataset_id == finished.training_dataset_id  # one file, one dataset

    settle_datasets()
    before = snapshot()
    again = history_service.import_now(connection=connection, user=None)
    assert (again.jobs_total, again.jobs_created, again.files_downloaded) == (2, 0, 0)
    assert snapshot() == before  # nothing duplicated, nothing changed
    counts = (MetricPoint.objects.count(), JobEvent.objects.count(), Checkpoint.objects.count())
    job_sync(job_id=finished.pk, full=True)  # a sync that reads everything again
    assert (
        MetricPoint.objects.count(),
        JobEvent.objects.count(),
        Checkpoint.objects.count(),
    ) == counts


def test_a_job_launched_here_is_recognised_by_its_suffix_marker(
    together: TogetherProvider, together_url: str, sandbox_key: str
) -> None:
    connection = connection_save(
        name="Together", kind="together", base_url=together_url, api_key=sandbox_key
    )
    ours = Job.objects.create(
        connection=connection, base_model=MODEL, status=Job.Status.LAUNCH_FAILED, id=uuid.uuid4()
    )
    train = upload(together, jsonl(chat_examples(20)), "train.jsonl")
    # The launch gave up, but Together had made the job (its answer was lost).
    made = together.create_job(
        JobSpec(model=MODEL, training_file=train, metadata={"tuneboard_job_id": str(ours.pk)}),
        marker="tuneboard_job_id",
    )
    run = history_service.import_now(connection=connection, user=None)
    assert run.status == "succeeded" and run.jobs_created == 0
    ours.refresh_from_db()
    assert ours.provider_job_id == made.id and Job.objects.count() == 1


def test_together_runs_travel_in_export_bundles(
    together: TogetherProvider, together_url: str, sandbox_key: str, tmp_path: Any
) -> None:
    """Imported Together runs leave in a connection's bundle and come back whole in another
    Tuneboard: Together's words, hyperparameters, metrics, checkpoints, events and curves."""
    from django.core.management import call_command

    from tests.history.test_bundles import download, flush_everything, runs_as_numbers
    from tests.permissions import client_for

    train = upload(together, jsonl(chat_examples(24)), "train.jsonl")
    done = together.create_job(
        JobSpec(model=MODEL, training_file=train, suffix="bundle",
                hyperparameters={"n_epochs": 2, "learning_rate": 2e-5, "lora_r": 4})
    )  # fmt: skip
    settle(together, done.id)
    connection = connection_save(
        name="Together", kind="together", base_url=together_url, api_key=sandbox_key
    )
    assert history_service.import_now(connection=connection, user=None).status == "succeeded"
    settle_datasets()
    before = runs_as_numbers()
    (run,) = before.values()
    assert (run["status"], run["provider_status"]) == ("succeeded", "completed")
    assert run["hyperparameters"]["learning_rate"] == 2e-5 and run["metrics"]

    bundle = tmp_path / "together.zip"
    bundle.write_bytes(download(client_for("viewer"), f"/jobs/connections/{connection.pk}/export/"))
    flush_everything()
    call_command("import_bundle", str(bundle))
    settle_datasets()
    assert runs_as_numbers() == before
    restored = Job.objects.get()
    assert restored.connection.kind == "together" and restored.connection.archived_at is not None
    page = client_for("viewer").get(f"/jobs/{restored.pk}/").content.decode()
    assert "at the provider: completed" in page
