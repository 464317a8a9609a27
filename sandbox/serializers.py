"""Objects as OpenAI returns them. The contract profile always returns shapes the official
SDK validates strictly; the realism profile adds quirks observed from the real API."""

from __future__ import annotations

import time
from typing import Any

from sandbox.api import Caller
from sandbox.catalog import BaseModelInfo
from sandbox.models import (
    SandboxCheckpoint,
    SandboxEvent,
    SandboxFile,
    SandboxJob,
    SandboxModel,
    SandboxUpload,
)

HYPERPARAMETER_KEYS = ("batch_size", "learning_rate_multiplier", "n_epochs")


def _shown_purpose(purpose: str, caller: Caller) -> str:
    # `evals` is accepted on input (spec and SDK) but missing from the response enum of both,
    # so the strict SDK would reject the file object: the contract profile shows the nearest
    # value it has, the realism profile what the real API answers.
    if purpose == "evals" and not caller.realism:
        return "user_data"
    return purpose


def file_json(file: SandboxFile, caller: Caller) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "file",
        "id": file.id,
        "bytes": file.bytes,
        "created_at": int(file.created_at),
        "filename": file.filename,
        "purpose": _shown_purpose(file.purpose, caller),
        "status": "processed",
    }
    # Optional in the spec and not nullable there: absent rather than null.
    if file.expires_at is not None:
        body["expires_at"] = file.expires_at
    return body


def upload_json(upload: SandboxUpload, caller: Caller) -> dict[str, Any]:
    return {
        "object": "upload",
        "id": upload.id,
        "bytes": upload.bytes,
        "created_at": upload.created_at,
        "expires_at": upload.expires_at,
        "filename": upload.filename,
        "purpose": upload.purpose,
        "status": upload.status,
        "file": file_json(upload.file, caller) if upload.file else None,
    }


def _shown_hyperparameters(job: SandboxJob) -> dict[str, Any]:
    # The real API shows "auto" until training starts, then the resolved numbers.
    started = job.status in ("running", "paused", "succeeded") or (
        job.status == "cancelled" and job.steps_done > 0
    )
    resolved = job.hyperparameters if started and job.hyperparameters else {}
    keys = (*HYPERPARAMETER_KEYS, "beta") if job.method_type == "dpo" else HYPERPARAMETER_KEYS
    return {key: resolved.get(key, job.requested_hyperparameters.get(key, "auto")) for key in keys}


def job_json(job: SandboxJob, caller: Caller) -> dict[str, Any]:
    shown = _shown_hyperparameters(job)
    legacy = {key: shown[key] for key in HYPERPARAMETER_KEYS}
    estimated_finish = None
    if job.status == "running" and job.seconds_per_step > 0:
        remaining = max(0, job.total_steps - job.steps_done) * job.seconds_per_step
        estimated_finish = int(time.time() + remaining) + 1
    error: dict[str, Any] | None = job.failure if job.status == "failed" else None
    if error is None and caller.realism:
        error = {}
    body: dict[str, Any] = {
        "object": "fine_tuning.job",
        "id": job.id,
        "created_at": int(job.created_at),
        "error": error,
        "fine_tuned_model": job.fine_tuned_model,
        "finished_at": job.finished_at,
        "hyperparameters": legacy,
        "model": job.model,
        "organization_id": job.organization_id,
        "result_files": [job.result_file] if job.result_file else [],
        "seed": job.seed,
        "status": job.status,
        "trained_tokens": job.trained_tokens,
        "training_file": job.training_file,
        "validation_file": job.validation_file,
        "estimated_finish": estimated_finish,
        "integrations": job.integrations,
        "metadata": job.metadata,
        "method": {"type": job.method_type, job.method_type: {"hyperparameters": shown}},
    }
    if caller.realism:
        body["user_provided_suffix"] = job.suffix
        body["shared_with_openai"] = False
        body["usage_metrics"] = None
    return body


def event_json(event: SandboxEvent, caller: Caller) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "fine_tuning.job.event",
        "id": event.id,
        "created_at": event.created_at,
        "level": event.level,
        "message": event.message,
        "type": event.type,
    }
    # The spec types `data` as an object (not nullable) and does not require it; the real API
    # sends null or {} on message events, which the realism profile reproduces.
    if event.data is not None:
        body["data"] = event.data
    elif caller.realism:
        body["data"] = {}
    return body


def checkpoint_json(checkpoint: SandboxCheckpoint) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.checkpoint",
        "id": checkpoint.id,
        "created_at": checkpoint.created_at,
        "fine_tuned_model_checkpoint": checkpoint.fine_tuned_model_checkpoint,
        "fine_tuning_job_id": checkpoint.job_id,
        "step_number": checkpoint.step_number,
        "metrics": checkpoint.metrics,
    }


def base_model_json(model: BaseModelInfo) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "model",
        "id": model.id,
        "created": model.created,
        "owned_by": "system",
    }
    if model.shutdown_date:
        body["shutdown_date"] = model.shutdown_date
    return body


def ft_model_json(model: SandboxModel) -> dict[str, Any]:
    return {"object": "model", "id": model.id, "created": model.created, "owned_by": model.owner}


def checkpoint_model_json(checkpoint: SandboxCheckpoint, *, owner: str) -> dict[str, Any]:
    return {
        "object": "model",
        "id": checkpoint.fine_tuned_model_checkpoint,
        "created": checkpoint.created_at,
        "owned_by": owner,
    }
