"""Runs made by hand (summary fields and metric rows as a sync stores them) for the dashboard
pages; runs made through the real sandbox live in test_sandbox_runs.py."""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from datasets.models import Dataset
from jobs import metrics
from jobs.models import Checkpoint, Job, MetricPoint, ProviderConnection
from jobs.services import connection_save
from tests.jobs.conftest import make_dataset, sandbox_connection  # noqa: F401 - fixtures

XSS = "<img src=x onerror=alert(1)>"
API_KEY = "sk-live-secret-key-WXYZ"
_counter = itertools.count(1)


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(
        name="Acme OpenAI", kind="openai", base_url="https://api.acme-internal.example/v1",
        api_key=API_KEY,
    )  # fmt: skip


@pytest.fixture
def make_dataset_row() -> Callable[..., Dataset]:
    def make(name: str = "train.jsonl") -> Dataset:
        n = next(_counter)
        return Dataset.objects.create(
            name=name, file=f"datasets/{n}.jsonl", size=10, line_count=1, status="valid",
            sha256=hashlib.sha256(str(n).encode()).hexdigest(),
        )  # fmt: skip

    return make


def curve(step: int, *, total: int, seed: int = 0) -> dict[str, Any]:
    """A MetricPoint-like row: train every step, valid every 5th, full valid at epoch ends."""
    base = 2.0 * math.exp(-3 * step / total) + 0.3 + 0.01 * seed
    row: dict[str, Any] = {
        "step": step,
        "train_loss": base * (1 + 0.03 * math.sin(step * 1.7 + seed)),
        "train_accuracy": min(0.99, 0.4 + 0.5 * step / total),
        "extra": {"learning_rate": 0.0001},
    }
    if step % 5 == 0:
        row["valid_loss"] = base + 0.05
        row["valid_accuracy"] = min(0.99, 0.38 + 0.5 * step / total)
    if step % (total // 3 or 1) == 0:
        row["full_valid_loss"] = base + 0.04 + 0.001 * seed
        row["full_valid_accuracy"] = min(0.99, 0.39 + 0.5 * step / total)
    return row


@pytest.fixture
def make_job(connection: ProviderConnection) -> Callable[..., Job]:
    """A job with the summary fields a sync keeps; ``steps`` metric rows stored like a sync
    stores them (jobs.metrics.upsert), and checkpoints at the epoch ends."""

    def make(*, steps: int = 0, epochs: int = 3, seed: int = 0, checkpoints: bool = True,
             **fields: Any) -> Job:  # fmt: skip
        n = next(_counter)
        now = timezone.now()
        defaults: dict[str, Any] = {
            "connection": connection,
            "name": f"run {n}",
            "provider_job_id": f"ftjob-secret{n:04d}",
            "base_model": "gpt-4o-mini-2024-07-18",
            "status": "succeeded",
            "requested_hyperparameters": {"n_epochs": epochs},
            "hyperparameters": {
                "n_epochs": epochs,
                "batch_size": 1,
                "learning_rate_multiplier": 1.8,
            },
            "training_file_id": f"file-trainsecret{n}",
            "validation_file_id": f"file-validsecret{n}",
            "fine_tuned_model": f"ft:gpt-4o-mini-2024-07-18:acme-org:demo:secret{n}",
            "trained_tokens": 1000 * n,
            "started_at": now - timedelta(minutes=30),
            "finished_at": now - timedelta(minutes=5),
        }
        defaults.update(fields)
        job = Job.objects.create(**defaults)
        if steps:
            rows = [curve(step, total=steps, seed=seed) for step in range(1, steps + 1)]
            metrics.upsert(job.pk, rows)
            points = list(MetricPoint.objects.filter(job=job).order_by("step"))
            train = [p for p in points if p.train_loss is not None]
            full = [p for p in points if p.full_valid_loss is not None]
            best = min(full, key=lambda p: (p.full_valid_loss, p.step)) if full else None
            Job.objects.filter(pk=job.pk).update(
                total_steps=steps, last_step=train[-1].step, final_train_loss=train[-1].train_loss,
                best_full_valid_loss=best.full_valid_loss if best else None,
                best_full_valid_step=best.step if best else None,
            )  # fmt: skip
            if checkpoints and epochs:
                per_epoch = steps // epochs
                Checkpoint.objects.bulk_create(
                    Checkpoint(
                        job=job, provider_checkpoint_id=f"ftckpt-{n}-{e}", step=e * per_epoch,
                        model_name=f"ft:gpt-4o-mini-2024-07-18:acme-org:demo:secret{n}:ckpt-step-{e * per_epoch}",
                        metrics={"step": e * per_epoch, "train_loss": 1.0, "full_valid_loss": 1.1},
                        created_at=now,
                    )
                    for e in range(1, epochs + 1)
                )  # fmt: skip
            job.refresh_from_db()
        return job

    return make


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """The runs list keeps its filter options in the cache for a minute: not across tests."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def catalog(transactional_db: None) -> None:
    """Transactional tests flush the base-model catalog a data migration seeded: put it back."""
    import importlib

    from django.apps import apps

    from datasets.models import BaseModel

    if not BaseModel.objects.exists():
        importlib.import_module("datasets.migrations.0002_seed_base_models").seed(apps, None)
