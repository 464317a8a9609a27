"""Launching on a Together connection through Tuneboard's own launch (a real Celery worker,
real HTTP to the sandbox's Together-compatible API): the job is created once with Together's
parameters, followed to the end with its metrics from Together's metrics endpoint, and its
launch rules are the adapter's declared parameters."""

from __future__ import annotations

from typing import Any

import pytest

from jobs.models import Checkpoint, Job, MetricPoint
from jobs.providers import TogetherProvider
from jobs.services import LaunchRejected
from tests.jobs.test_launch_and_poll import launched, settled
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"


def test_a_together_launch_runs_to_the_end_once(
    together_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    training = make_dataset(chat_examples(100))
    validation = make_dataset(chat_examples(12, seed=4), name="valid")
    job = launched(
        together_connection, training, base_model=MODEL, validation_dataset=validation,
        suffix="e2e", seed=11,
        hyperparameters={"n_epochs": 2, "learning_rate": 3e-5, "lora_r": 16, "n_evals": 2,
                         "lr_scheduler": "cosine", "training_type": "lora"},
    )  # fmt: skip
    job = settled(job)
    assert (job.status, job.provider_status) == ("succeeded", "completed"), job.launch_error
    theirs = _together(together_connection).list_jobs().data
    assert [j.id for j in theirs] == [job.provider_job_id]  # one job at the provider
    raw = theirs[0].raw
    assert raw["learning_rate"] == 3e-5 and raw["training_type"]["lora_r"] == 16
    assert raw["lr_scheduler"]["lr_scheduler_type"] == "cosine" and raw["random_seed"] == 11
    assert raw["suffix"].startswith("e2e-tb")  # the launch marker rides in the suffix
    points = list(MetricPoint.objects.filter(job=job).order_by("step"))
    assert [p.step for p in points] == list(range(1, job.last_step + 1)) and job.last_step == 8
    assert job.best_full_valid_loss is not None
    assert Checkpoint.objects.filter(job=job).exists()


def _together(connection: Any) -> TogetherProvider:
    from jobs.connections import provider_for_connection

    provider = provider_for_connection(connection)
    assert isinstance(provider, TogetherProvider)
    return provider


def test_launch_rules_are_the_adapters_declared_parameters(
    together_connection, make_dataset
) -> None:  # type: ignore[no-untyped-def]
    training = make_dataset(chat_examples(20))
    with pytest.raises(LaunchRejected) as rejected:
        launched(
            together_connection, training, base_model=MODEL,
            hyperparameters={"learning_rate_multiplier": 2, "learning_rate": 5.0, "lora_r": 1.5,
                             "lr_scheduler": "step", "dpo_beta": 0.2},
        )  # fmt: skip
    messages = sorted(p.message for p in rejected.value.problems)
    assert messages == [
        "LR schedule must be one of linear, cosine.",
        "Learning rate must be a number from 1e-08 to 1.",
        "LoRA rank must be a whole number from 1 to 64.",
        "β (DPO) does not apply to this method.",
        "“learning_rate_multiplier” is not a hyperparameter this provider takes.",
    ]
    assert not Job.objects.exists()  # nothing half-written
