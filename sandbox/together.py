"""The Together-compatible surface of the sandbox: Together's catalog, its create body, and
its objects, over the same engine (curves, checkpoints, faults, speed) as the OpenAI one.

Shapes follow Together's OpenAPI description (``../shared/together-openapi/openapi.yaml``):
ISO timestamps, its statuses, hyperparameters at the top level of a job, events without ids,
checkpoints by step, and metrics as flat dictionaries (``train/loss``…).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.api import ApiError
from sandbox.models import SandboxCheckpoint, SandboxEvent, SandboxFile, SandboxJob
from sandbox.requests import JobRequest

# The sandbox's Together learning rate maps onto the engine's OpenAI-style multiplier: a
# multiplier of 1 is a learning rate of 1e-4 (Together's default 1e-5 trains like 0.1).
LR_PER_MULTIPLIER = 1e-4
PRICE_PER_1M_TOKENS = {"lora": 0.48, "full": 0.54}
MAX_SUFFIX = 40


@dataclass(frozen=True)
class TogetherModel:
    name: str
    max_epochs: int = 20
    max_evals: int = 100
    max_lr: float = 1.0
    min_lr: float = 1e-8
    max_batch: int = 32
    min_batch: int = 8
    max_rank: int = 64
    dpo: bool = True


MODELS: tuple[TogetherModel, ...] = (
    TogetherModel("meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"),
    TogetherModel("Qwen/Qwen2.5-7B-Instruct", max_batch=24),
    TogetherModel("mistralai/Mistral-7B-Instruct-v0.2", dpo=False),
)
_BY_NAME = {m.name: m for m in MODELS}

STATUS = {
    "validating_files": "pending",
    "queued": "queued",
    "running": "running",
    "paused": "queued",
    "succeeded": "completed",
    "failed": "error",
    "cancelled": "cancelled",
}


def model_of(name: Any) -> TogetherModel:
    model = _BY_NAME.get(name) if isinstance(name, str) else None
    if model is None:
        raise ApiError(400, f"Model {name!r} is not supported for fine-tuning", param="model")
    return model


def limits_json(model: TogetherModel) -> dict[str, Any]:
    # The spec has no "supports DPO" flag: a model without DPO has no DPO batch size (0).
    dpo_batch = model.max_batch // 2 if model.dpo else 0
    training = {"max_batch_size": model.max_batch, "max_batch_size_dpo": dpo_batch,
                "min_batch_size": model.min_batch}  # fmt: skip
    return {
        "model_name": model.name,
        "full_training": dict(training),
        "lora_training": {
            **training,
            "max_rank": model.max_rank,
            "default_rank": 8,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
        },
        "max_num_epochs": model.max_epochs,
        "max_num_evals": model.max_evals,
        "max_num_checkpoints": model.max_epochs,
        "max_seq_length_sft": 8192,
        "max_seq_length_dpo": 4096,
        "min_max_seq_length": 512,
        "default_gradient_accumulation_steps": 1,
        "supports_full_training": True,
        "max_learning_rate": model.max_lr,
        "min_learning_rate": model.min_lr,
        "supports_vision": False,
        "supports_tools": True,
        "supports_reasoning": False,
        "merge_output_lora": False,
    }


def _number(body: dict[str, Any], key: str, low: float, high: float, default: float) -> float:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ApiError(400, f"{key} must be a number", param=key)
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low:g} and {high:g}", param=key)
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int, high: int, default: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key} must be an integer", param=key)
    if not low <= value <= high:
        raise ApiError(400, f"{key} must be between {low} and {high}", param=key)
    return value


@dataclass(frozen=True)
class TogetherCreate:
    request: JobRequest
    model: TogetherModel
    params: dict[str, Any]


def parse_create(body: dict[str, Any]) -> TogetherCreate:
    """Together's create body. Keys newer than the published spec (the SDK sends early
    stopping, gradient accumulation…) are accepted and ignored, as Together does."""
    model = model_of(body.get("model"))
    for key in ("training_file", "model"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise ApiError(400, f"{key} is required", param=key)
    validation = body.get("validation_file")
    if validation is not None and not isinstance(validation, str):
        raise ApiError(400, "validation_file must be a string", param="validation_file")
    n_epochs = _integer(body, "n_epochs", 1, model.max_epochs, 1)
    n_checkpoints = _integer(body, "n_checkpoints", 1, n_epochs * 10, 1)
    n_evals = _integer(body, "n_evals", 0, model.max_evals, 0)
    learning_rate = _number(body, "learning_rate", model.min_lr, model.max_lr, 1e-5)
    method = body.get("training_method") or {"method": "sft", "train_on_inputs": "auto"}
    if not isinstance(method, dict) or method.get("method") not in ("sft", "dpo"):
        raise ApiError(
            400, "training_method.method must be 'sft' or 'dpo'", param="training_method"
        )
    if method["method"] == "dpo" and not model.dpo:
        raise ApiError(400, f"{model.name} does not support DPO", param="training_method")
    training_type = body.get("training_type") or {"type": "Lora", "lora_r": 8, "lora_alpha": 16}
    if not isinstance(training_type, dict) or training_type.get("type") not in ("Lora", "Full"):
        raise ApiError(400, "training_type.type must be 'Lora' or 'Full'", param="training_type")
    if training_type["type"] == "Lora":
        _integer(training_type, "lora_r", 1, model.max_rank, 8)
        _integer(training_type, "lora_alpha", 1, 4 * model.max_rank, 16)
    batch = body.get("batch_size", "max")
    limit = model.max_batch // 2 if method["method"] == "dpo" else model.max_batch
    if batch != "max":
        batch = _integer(body, "batch_size", model.min_batch, limit, limit)
    suffix = body.get("suffix")
    if suffix is not None and (not isinstance(suffix, str) or len(suffix) > MAX_SUFFIX):
        raise ApiError(
            400, f"suffix must be a string of at most {MAX_SUFFIX} characters", param="suffix"
        )
    seed = body.get("random_seed")
    if seed is not None:
        seed = _integer(body, "random_seed", 0, 2_147_483_647, 0)
    params: dict[str, Any] = {
        "n_checkpoints": n_checkpoints,
        "n_evals": n_evals,
        "learning_rate": learning_rate,
        "batch_size": limit if batch == "max" else batch,
        "lr_scheduler": body.get("lr_scheduler")
        or {"lr_scheduler_type": "linear", "lr_scheduler_args": {"min_lr_ratio": 0.0}},
        "warmup_ratio": _number(body, "warmup_ratio", 0.0, 1.0, 0.0),
        "max_grad_norm": _number(body, "max_grad_norm", 0.0, 1e6, 1.0),
        "weight_decay": _number(body, "weight_decay", 0.0, 1e6, 0.0),
        "training_type": training_type,
        "training_method": method,
        "packing": body.get("packing", True) is not False,
    }
    for key in ("wandb_project_name", "wandb_name", "from_checkpoint", "max_seq_length"):
        if body.get(key) is not None:
            params[key] = body[key]
    hyperparameters: dict[str, Any] = {
        "n_epochs": n_epochs,
        "batch_size": params["batch_size"],
        "learning_rate_multiplier": learning_rate / LR_PER_MULTIPLIER,
    }
    if method["method"] == "dpo":
        hyperparameters["beta"] = _number(method, "dpo_beta", 0.0, 10.0, 0.1)
    request = JobRequest(
        model=model.name,
        training_file=body["training_file"],
        validation_file=validation or None,
        method="dpo" if method["method"] == "dpo" else "supervised",
        hyperparameters=hyperparameters,
        suffix=suffix,
        seed=seed,
        metadata=None,
        integrations=None,
    )
    return TogetherCreate(request=request, model=model, params=params)


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


def output_name(job: SandboxJob) -> str:
    short = job.model.split("/")[-1]
    tail = hashlib.sha256(job.id.encode()).hexdigest()[:8]
    return f"sandbox/{short}-{job.suffix}-{tail}" if job.suffix else f"sandbox/{short}-{tail}"


def job_json(job: SandboxJob) -> dict[str, Any]:
    params = job.provider_params or {}
    status = STATUS.get(job.status, job.status)
    started = job.created_at + job.validate_seconds + job.queue_seconds
    updated = job.finished_at or (started if job.steps_done else job.created_at)
    tokens = job.tokens_per_epoch * int((job.hyperparameters or {}).get("n_epochs", 1))
    kind = "full" if params.get("training_type", {}).get("type") == "Full" else "lora"
    body: dict[str, Any] = {
        "id": job.id,
        "status": status,
        "created_at": _iso(job.created_at),
        "updated_at": _iso(updated),
        "user_id": job.owner,
        "owner_address": f"{job.owner}@sandbox.invalid",
        "total_price": int(tokens / 1e6 * PRICE_PER_1M_TOKENS[kind] * 1e9),  # nano-dollars
        "token_count": job.trained_tokens or 0,
        "events": [],
        "training_file": job.training_file,
        "model": job.model,
        "model_output_name": output_name(job),
        "n_epochs": int((job.hyperparameters or {}).get("n_epochs", 1)),
        "n_checkpoints": params.get("n_checkpoints", 1),
        "n_evals": params.get("n_evals", 0),
        "batch_size": params.get("batch_size", 8),
        "learning_rate": params.get("learning_rate", 1e-5),
        "lr_scheduler": params.get("lr_scheduler"),
        "warmup_ratio": params.get("warmup_ratio", 0.0),
        "max_grad_norm": params.get("max_grad_norm", 1.0),
        "weight_decay": params.get("weight_decay", 0.0),
        "training_type": params.get("training_type"),
        "training_method": _shown_method(params.get("training_method")),
        "random_seed": job.seed,
        "packing": params.get("packing", True),
    }
    if job.steps_done or job.status in ("running", "succeeded"):
        body["started_at"] = _iso(started)
    if job.validation_file:
        body["validation_file"] = job.validation_file
    if job.suffix:
        body["suffix"] = job.suffix
    for key in ("wandb_project_name", "wandb_name", "from_checkpoint", "max_seq_length"):
        if key in params:
            body[key] = params[key]
    if job.status == "running" and job.seconds_per_step > 0:
        remaining = max(0, job.total_steps - job.steps_done) * job.seconds_per_step
        body["progress"] = {"estimate_available": True, "seconds_remaining": int(remaining)}
    body = {k: v for k, v in body.items() if v is not None}
    # Present, null for full training: the official SDK's response model requires the key.
    body["adapter_output_name"] = f"{output_name(job)}-adapter" if kind == "lora" else None
    return body


def _shown_method(method: Any) -> Any:
    # The description types train_on_inputs as a boolean in answers; "auto" resolves to
    # false for the chat data the sandbox trains on.
    if isinstance(method, dict) and method.get("method") == "sft":
        return {**method, "train_on_inputs": method.get("train_on_inputs") is True}
    return method


# Engine messages onto Together's event types (its enum); anything else is a warning.
_EVENT_TYPES = (
    ("Created fine-tuning job", "job_pending"),
    ("Validating training file", "training_data_downloading"),
    ("Files validated", "training_data_download_complete"),
    ("Fine-tuning job started", "training_start"),
    ("Checkpoint created", "checkpoint_save"),
    ("New fine-tuned model created", "model_upload_complete"),
    ("The job has successfully completed", "job_complete"),
    ("Fine-tuning job cancelled", "job_stopped"),
)


def event_json(event: SandboxEvent, job: SandboxJob) -> dict[str, Any]:
    kind = next((t for prefix, t in _EVENT_TYPES if event.message.startswith(prefix)), None)
    if kind is None:
        kind = "job_error" if event.level == "error" else "warning"
    step = 0
    if kind == "checkpoint_save":
        digits = "".join(c for c in event.message.rsplit(" ", 1)[-1] if c.isdigit())
        step = int(digits) if digits else 0
    return {
        "object": "fine-tune-event",
        "created_at": _iso(event.created_at),
        "level": event.level if event.level in ("info", "warning", "error") else "info",
        "message": event.message,
        "type": kind,
        "param_count": 8_030_000_000,
        "token_count": job.tokens_per_epoch,
        "total_steps": job.total_steps,
        "wandb_url": "",
        "step": step,
        "checkpoint_path": f"{output_name(job)}/checkpoint-{step}" if step else "",
        "model_path": output_name(job) if kind == "model_upload_complete" else "",
        "training_offset": 0,
        "hash": hashlib.sha256(event.id.encode()).hexdigest()[:16],
    }


def checkpoint_json(checkpoint: SandboxCheckpoint, job: SandboxJob) -> dict[str, Any]:
    final = checkpoint.step_number >= job.total_steps
    return {
        "step": checkpoint.step_number,
        "path": f"{output_name(job)}/checkpoint-{checkpoint.step_number}",
        "created_at": _iso(checkpoint.created_at),
        "checkpoint_type": "final" if final else "intermediate",
    }


def metric_json(data: dict[str, Any], job: SandboxJob) -> dict[str, float] | None:
    """A metrics event of the engine as Together's flat dictionary."""
    step = data.get("step")
    if not isinstance(step, int):
        return None
    n_epochs = int((job.hyperparameters or {}).get("n_epochs", 1))
    per_epoch = max(1, job.total_steps // max(1, n_epochs))
    row: dict[str, float] = {"train/global_step": step, "train/epoch": round(step / per_epoch, 4)}
    if isinstance(data.get("train_loss"), int | float):
        row["train/loss"] = data["train_loss"]
    full = data.get("full_valid_loss")
    if isinstance(full, int | float):
        row["eval/loss"] = full
    learning_rate = float((job.provider_params or {}).get("learning_rate", 1e-5))
    row["train/learning_rate"] = learning_rate * max(0.0, 1 - step / max(1, job.total_steps))
    return row


def file_json(file: SandboxFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "created_at": int(file.created_at),
        "filename": file.filename,
        "bytes": file.bytes,
        "purpose": file.purpose if file.purpose in ("fine-tune", "eval") else "fine-tune",
        "FileType": "jsonl",
        "Processed": True,
        "processing_status": "COMPLETED",
    }


def estimate_price(create: TogetherCreate, tokens_per_epoch: int) -> dict[str, Any]:
    kind = "full" if create.params["training_type"].get("type") == "Full" else "lora"
    n_epochs = int(create.request.hyperparameters["n_epochs"])
    train_tokens = tokens_per_epoch * n_epochs
    price = train_tokens / 1e6 * PRICE_PER_1M_TOKENS[kind]
    return {
        "estimation_available": True,
        "estimated_total_price": round(price, 6),
        "allowed_to_proceed": True,
        "user_limit": 100.0,
        "estimated_train_token_count": train_tokens,
        "estimated_eval_token_count": 0,
    }
