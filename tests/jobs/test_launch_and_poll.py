"""Launch and beat-driven polling against the sandbox over real HTTP, with a real Celery worker
and a real Celery beat: what Tuneboard stores must equal what the provider reports."""

from __future__ import annotations

import csv
import io

import pytest

from jobs.connections import provider_for_connection
from jobs.models import Checkpoint, Job, JobEvent, MetricPoint, ProviderFile
from jobs.services import LaunchRequest, job_launch, job_launch_run
from tests.conftest import wait_until
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.permissions import make_user
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def launched(connection, dataset, **kwargs) -> Job:  # type: ignore[no-untyped-def]
    request = LaunchRequest(
        connection=connection,
        base_model=kwargs.pop("base_model", "gpt-4o-mini"),
        training_dataset=dataset,
        **kwargs,
    )
    return job_launch(
        request=request, user=make_user("member", username=f"m-{Job.objects.count()}")
    )


def settled(job: Job, timeout: float = 60) -> Job:
    """Wait until the job is terminal and its final extra sync has happened."""
    assert wait_until(
        lambda: Job.objects.filter(
            pk=job.pk, next_poll_at__isnull=True, status__in=Job.TERMINAL
        ).exists(),
        timeout=timeout,
    ), Job.objects.filter(pk=job.pk).values("status", "last_sync_error", "launch_error").first()
    job.refresh_from_db()
    return job


def provider_events(job: Job) -> list:  # type: ignore[type-arg]
    provider = provider_for_connection(job.connection)
    events, after = [], None
    while True:
        page = provider.list_events(job.provider_job_id, after=after, limit=100)
        events += page.data
        if not page.has_more:
            return events
        after = page.data[-1].id


def test_launch_to_success_stores_everything_exactly_once(
    sandbox_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    training = make_dataset(chat_examples(30))
    validation = make_dataset(chat_examples(10, seed=3), name="valid")
    job = launched(
        sandbox_connection, training, validation_dataset=validation, seed=7, suffix="e2e",
        hyperparameters={"n_epochs": 3}, name="first run", tags=["demo"],
    )  # fmt: skip
    job = settled(job)
    assert job.status == "succeeded", (job.error, job.last_sync_error)
    assert job.provider_job_id.startswith("ftjob-")
    assert job.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:sandbox:e2e:")
    assert job.hyperparameters["n_epochs"] == 3 and job.total_steps == 90
    assert job.trained_tokens and job.started_at and job.finished_at

    theirs = provider_events(job)
    assert JobEvent.objects.filter(job=job).count() == len(theirs)
    assert set(JobEvent.objects.filter(job=job).values_list("provider_event_id", flat=True)) == {
        e.id for e in theirs
    }
    assert job.last_event_id == theirs[0].id

    points = {p.step: p for p in MetricPoint.objects.filter(job=job)}
    assert sorted(points) == list(range(1, 91))
    provider = provider_for_connection(job.connection)
    rows = list(csv.DictReader(io.StringIO(provider.download_results_csv(job.result_files[0]))))
    assert len(rows) == 90
    for row in rows:
        point = points[int(row["step"])]
        assert point.train_loss == float(row["train_loss"])
        assert point.train_accuracy == float(row["train_accuracy"])
        assert point.valid_loss == (float(row["valid_loss"]) if row["valid_loss"] else None)
        assert point.full_valid_loss == (
            float(row["full_valid_loss"]) if row["full_valid_loss"] else None
        )
    assert job.final_train_loss == points[90].train_loss
    best = min(
        (p for p in points.values() if p.full_valid_loss is not None),
        key=lambda p: p.full_valid_loss,
    )
    assert (job.best_full_valid_loss, job.best_full_valid_step) == (best.full_valid_loss, best.step)

    checkpoints = list(Checkpoint.objects.filter(job=job))
    assert [c.step for c in checkpoints] == [30, 60, 90]
    assert checkpoints[-1].model_name == f"{job.fine_tuned_model}:ckpt-step-90"

    # A second launch with the same dataset reuses the uploaded provider file.
    again = settled(launched(sandbox_connection, training, hyperparameters={"n_epochs": 1}))
    assert again.training_file_id == job.training_file_id
    assert (
        ProviderFile.objects.filter(connection=sandbox_connection).count() == 2
    )  # training + validation


def test_failed_job_keeps_the_providers_error(
    sandbox_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    # Valid chat data sent as a DPO job: the provider rejects it when validating files.
    # job_launch refuses this pairing itself (tests/jobs/test_launch_rules.py), so the job is
    # made as job_launch makes it, to see what a rejection found only by the provider does.
    job = Job.objects.create(
        connection=sandbox_connection,
        base_model="gpt-4o-mini",
        method="dpo",
        training_dataset=make_dataset(chat_examples(12)),
    )
    job_launch_run(job_id=job.pk)
    job = settled(job)
    assert job.status == "failed"
    assert job.error["code"] == "invalid_training_file"
    assert "preference data" in job.error["message"]
    assert JobEvent.objects.filter(job=job, level="error").count() == 1


def test_continue_training_from_a_fine_tuned_model(
    sandbox_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    dataset = make_dataset(chat_examples(12))
    first = settled(launched(sandbox_connection, dataset))
    second = settled(
        launched(sandbox_connection, dataset, base_model=first.fine_tuned_model, suffix="v2")
    )
    assert second.status == "succeeded" and second.model == first.fine_tuned_model
    assert second.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:sandbox:v2:")


def test_azure_style_connection(azure_connection, make_dataset, celery_worker, celery_beat) -> None:  # type: ignore[no-untyped-def]
    job = settled(launched(azure_connection, make_dataset(chat_examples(12))))
    assert (
        job.status == "succeeded" and MetricPoint.objects.filter(job=job).count() == job.total_steps
    )


def test_launch_is_idempotent_when_the_task_runs_twice(
    sandbox_connection, make_dataset, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    # The same task again (a redelivery), and a crash-recovery run that finds the job by metadata.
    job_launch_run(job_id=job.pk)
    Job.objects.filter(pk=job.pk).update(provider_job_id=None, status="launching")
    recovered = job_launch_run(job_id=job.pk)
    provider = provider_for_connection(sandbox_connection)
    created = provider.list_jobs(metadata={"tuneboard_job_id": str(job.pk)}).data
    assert len(created) == 1 and recovered.provider_job_id == created[0].id
    assert len(provider.list_jobs(limit=100).data) == 1
