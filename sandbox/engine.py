"""The simulated job lifecycle. No background thread: every read calls ``job_advance``, which
materialises, under a row lock, whatever the job's fixed timeline says has happened by now.

Timeline: created at t0 → ``validating_files`` for ``validate_seconds`` → ``queued`` for
``queue_seconds`` → ``running``, one step every ``seconds_per_step`` (the run clock stops while
paused; a resume re-queues for ``queue_seconds``) → ``succeeded``. A training file that breaks
the validation rules fails the job when validation ends, with OpenAI's error shape.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterable
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction

from sandbox import ids
from sandbox.catalog import base_of
from sandbox.models import (
    SandboxCheckpoint,
    SandboxEvent,
    SandboxFile,
    SandboxJob,
    SandboxModel,
)
from sandbox.simulation import Hyperparameters, TrainingRun, TrainingSpec

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
KEEP_CHECKPOINTS = 3
ORG_SLUG = "sandbox"
EVENT_BATCH = 2000

# phase_events: which lifecycle messages have been written.
PHASE_NONE, PHASE_CREATED, PHASE_VALIDATED, PHASE_STARTED = 0, 1, 2, 3


def training_run(job: SandboxJob) -> TrainingRun:
    spec = TrainingSpec(
        method=job.method_type,
        n_examples=max(1, job.n_examples),
        n_valid_examples=job.n_valid_examples,
        tokens_per_epoch=job.tokens_per_epoch,
        seed=job.seed,
        model=base_of(job.model),
    )
    hp = job.hyperparameters or {}
    return TrainingRun(
        spec,
        Hyperparameters(
            n_epochs=int(hp["n_epochs"]),
            batch_size=int(hp["batch_size"]),
            learning_rate_multiplier=float(hp["learning_rate_multiplier"]),
            beta=float(hp["beta"]) if hp.get("beta") is not None else None,
        ),
    )


class _Writer:
    """Collects events and writes them in bulk, in chronological order."""

    def __init__(self, job: SandboxJob) -> None:
        self.job = job
        self.pending: list[SandboxEvent] = []

    def add(
        self,
        at: float,
        message: str,
        *,
        level: str = "info",
        type: str = "message",
        data: dict[str, Any] | None = None,
    ) -> None:
        self.pending.append(
            SandboxEvent(
                id=ids.event_id(),
                job=self.job,
                created_at=int(at),
                level=level,
                message=message,
                type=type,
                data=data,
            )
        )
        if len(self.pending) >= EVENT_BATCH:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            SandboxEvent.objects.bulk_create(self.pending)
            self.pending = []


def _run_start(job: SandboxJob) -> float:
    return job.created_at + job.validate_seconds + job.queue_seconds


def _run_clock(job: SandboxJob, now: float) -> float:
    frozen = job.paused_at if job.paused_at is not None else now
    return frozen - _run_start(job) - job.paused_seconds


def _steps_due(job: SandboxJob, now: float) -> int:
    if job.seconds_per_step <= 0:
        return job.total_steps
    return max(0, min(job.total_steps, math.floor(_run_clock(job, now) / job.seconds_per_step)))


def _step_time(job: SandboxJob, step: int, now: float) -> float:
    return min(now, _run_start(job) + job.paused_seconds + step * job.seconds_per_step)


def _validation_message(job: SandboxJob) -> str:
    if job.validation_file:
        return (
            f"Validating training file: {job.training_file} and validation file: "
            f"{job.validation_file}"
        )
    return f"Validating training file: {job.training_file}"


def _advance_phases(job: SandboxJob, now: float, writer: _Writer) -> bool:
    """Lifecycle messages up to ``now``; returns False when the job stopped (failed)."""
    if job.phase_events < PHASE_CREATED:
        writer.add(job.created_at, f"Created fine-tuning job: {job.id}")
        writer.add(job.created_at, _validation_message(job))
        job.phase_events = PHASE_CREATED
    validated_at = job.created_at + job.validate_seconds
    if job.phase_events < PHASE_VALIDATED:
        if now < validated_at:
            return False
        if job.failure:
            writer.add(validated_at, job.failure["message"], level="error")
            job.status = "failed"
            job.finished_at = int(validated_at)
            job.phase_events = PHASE_VALIDATED
            return False
        writer.add(validated_at, "Files validated, moving job to queued state")
        job.status = "queued"
        job.phase_events = PHASE_VALIDATED
    if job.phase_events < PHASE_STARTED:
        if now < _run_start(job):
            return False
        writer.add(_run_start(job), "Fine-tuning job started")
        job.status = "running"
        job.phase_events = PHASE_STARTED
    return True


def _model_name(job: SandboxJob) -> str:
    return f"ft:{base_of(job.model)}:{ORG_SLUG}:{job.suffix or ''}:{job.id[-8:]}"


def _advance_steps(job: SandboxJob, now: float, writer: _Writer) -> None:
    if job.status == "paused":
        return
    if job.status == "queued" and job.resume_mark is not None:
        if _run_clock(job, now) < job.resume_mark:
            return
        job.status = "running"
        job.resume_mark = None
    due = _steps_due(job, now)
    if due <= job.steps_done:
        return
    run = training_run(job)
    epoch_ends = set(run.epoch_end_steps())
    model_name = _model_name(job)
    for step in range(job.steps_done + 1, due + 1):
        at = _step_time(job, step, now)
        metrics = run.metrics(step)
        writer.add(at, metrics.event_message(), type="metrics", data=metrics.event_data())
        if step in epoch_ends:
            writer.flush()
            _checkpoint(job, step, at, model_name, metrics.checkpoint_metrics())
            writer.add(at, f"Checkpoint created at step {step}")
    job.steps_done = due
    if due >= job.total_steps:
        _succeed(job, run, model_name, _step_time(job, due, now), writer)


def _checkpoint(
    job: SandboxJob, step: int, at: float, model_name: str, metrics: dict[str, Any]
) -> None:
    SandboxCheckpoint.objects.create(
        id=ids.checkpoint_id(),
        job=job,
        step_number=step,
        created_at=int(at),
        fine_tuned_model_checkpoint=f"{model_name}:ckpt-step-{step}",
        metrics=metrics,
    )
    # OpenAI keeps only the checkpoints of the last three epochs.
    stale = SandboxCheckpoint.objects.filter(job=job).order_by("-step_number")[KEEP_CHECKPOINTS:]
    SandboxCheckpoint.objects.filter(pk__in=[c.pk for c in stale]).delete()


def _succeed(
    job: SandboxJob, run: TrainingRun, model_name: str, at: float, writer: _Writer
) -> None:
    csv_bytes = run.results_csv().encode()
    results = SandboxFile(
        id=ids.file_id(),
        owner=job.owner,
        filename="step_metrics.csv",
        purpose="fine-tune-results",
        bytes=len(csv_bytes),
        created_at=at,
    )
    results.content.save(f"{results.id}.csv", ContentFile(csv_bytes), save=False)
    results.save()
    SandboxModel.objects.create(id=model_name, owner=job.owner, created=int(at), job=job)
    job.status = "succeeded"
    job.fine_tuned_model = model_name
    job.result_file = results.id
    job.trained_tokens = run.trained_tokens()
    job.finished_at = int(at)
    writer.add(at, f"New fine-tuned model created: {model_name}")
    writer.add(at, "The job has successfully completed")


def job_advance(job_id: str, *, now: float | None = None) -> SandboxJob:
    """Bring one job up to date. Safe under concurrency: the row lock serialises readers."""
    from sandbox import webhooks

    now = time.time() if now is None else now
    with transaction.atomic():
        job = SandboxJob.objects.select_for_update().get(pk=job_id)
        if job.status in TERMINAL:
            return job
        writer = _Writer(job)
        if _advance_phases(job, now, writer):
            _advance_steps(job, now, writer)
        writer.flush()
        job.save()
        if job.status in TERMINAL:
            webhooks.delivery_schedule(job=job)
    return job


def jobs_advance(jobs: Iterable[SandboxJob], *, now: float | None = None) -> list[SandboxJob]:
    return [job if job.status in TERMINAL else job_advance(job.id, now=now) for job in jobs]


def job_cancel(job_id: str) -> SandboxJob:
    from sandbox import webhooks
    from sandbox.api import ApiError

    now = time.time()
    job = job_advance(job_id, now=now)
    with transaction.atomic():
        job = SandboxJob.objects.select_for_update().get(pk=job_id)
        if job.status in TERMINAL:
            raise ApiError(
                400,
                f"Job {job_id} has already completed ({job.status}) and cannot be cancelled.",
                param="fine_tuning_job_id",
            )
        job.status = "cancelled"
        job.cancelled_at = now
        job.finished_at = int(now)
        SandboxEvent.objects.create(
            id=ids.event_id(), job=job, created_at=int(now), message="Fine-tuning job cancelled"
        )
        job.save()
        webhooks.delivery_schedule(job=job)
    return job


def job_pause(job_id: str) -> SandboxJob:
    from sandbox.api import ApiError

    now = time.time()
    job_advance(job_id, now=now)
    with transaction.atomic():
        job = SandboxJob.objects.select_for_update().get(pk=job_id)
        if job.status != "running":
            raise ApiError(
                400,
                f"Only a running job can be paused; this job is {job.status}.",
                param="fine_tuning_job_id",
            )
        job.status = "paused"
        job.paused_at = now
        SandboxEvent.objects.create(
            id=ids.event_id(), job=job, created_at=int(now), message="Fine-tuning job paused"
        )
        job.save()
    return job


def job_resume(job_id: str) -> SandboxJob:
    from sandbox.api import ApiError

    now = time.time()
    with transaction.atomic():
        job = SandboxJob.objects.select_for_update().get(pk=job_id)
        if job.status != "paused" or job.paused_at is None:
            raise ApiError(
                400,
                f"Only a paused job can be resumed; this job is {job.status}.",
                param="fine_tuning_job_id",
            )
        job.resume_mark = _run_clock(job, now)
        job.paused_seconds += (now - job.paused_at) + job.queue_seconds
        job.paused_at = None
        job.status = "queued"
        SandboxEvent.objects.create(
            id=ids.event_id(), job=job, created_at=int(now), message="Fine-tuning job resumed"
        )
        job.save()
    return job


def job_fast_forward(job_id: str) -> SandboxJob:
    """Admin action: finish a job now, with every remaining event and checkpoint."""
    with transaction.atomic():
        job = SandboxJob.objects.select_for_update().get(pk=job_id)
        if job.status in TERMINAL:
            return job
        now = time.time()
        if job.paused_at is not None:
            job.paused_seconds += now - job.paused_at
            job.paused_at = None
            if job.status == "paused":
                job.status = "running"
        job.resume_mark = None
        job.validate_seconds = min(job.validate_seconds, max(0.0, now - job.created_at))
        job.queue_seconds = 0
        job.seconds_per_step = 0
        job.save()
    return job_advance(job_id, now=now)


def hyperparameters_json(hp: Hyperparameters, method: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "batch_size": hp.batch_size,
        "learning_rate_multiplier": hp.learning_rate_multiplier,
        "n_epochs": hp.n_epochs,
    }
    if method == "dpo":
        body["beta"] = hp.beta
    return body


def results_content(file: SandboxFile, *, base64_encoded: bool) -> bytes:
    with file.content.open("rb") as handle:
        data = handle.read()
    return base64.b64encode(data) if base64_encoded else data
