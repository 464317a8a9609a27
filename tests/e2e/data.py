"""Rows the browser tests start from, stored the way the app stores them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from datasets.models import Dataset
from jobs.models import Job, JobEvent, ProviderConnection


def make_running_job(connection: ProviderConnection, dataset: Dataset, **fields: Any) -> Job:
    """A job as a sync stores a running one (no worker needed): its page keeps polling."""
    values: dict[str, Any] = {
        "connection": connection,
        "training_dataset": dataset,
        "base_model": "gpt-4o-mini-2024-07-18",
        "model": "gpt-4o-mini-2024-07-18",
        "status": Job.Status.RUNNING,
        "provider_job_id": f"ftjob-e2e{Job.objects.count() + 1}",
        "requested_hyperparameters": {"n_epochs": 3},
        "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8},
        "total_steps": 60,
        "last_step": 12,
        "started_at": timezone.now() - timedelta(minutes=2),
    }
    values.update(fields)
    job = Job.objects.create(**values)
    add_event(job, "Fine-tuning job started")
    return job


def add_event(job: Job, message: str, *, level: str = "info") -> JobEvent:
    n = JobEvent.objects.filter(job=job).count() + 1
    return JobEvent.objects.create(
        job=job, provider_event_id=f"ftevent-e2e-{job.pk}-{n}", created_at=timezone.now(),
        level=level, message=message,
    )  # fmt: skip
