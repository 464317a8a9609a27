"""Together AI's objects as Tuneboard's records.

Together's shapes differ from OpenAI's in every way that matters: ISO timestamps, statuses
of its own, hyperparameters at the top level of the job (an absolute learning rate, LoRA
rank and alpha, a scheduler object), events without ids, checkpoints named by step, metrics
as flat dictionaries from their own endpoint. What is mapped here is mapped once; every
provider word is also kept (``JobInfo.provider_status``, ``raw``) so nothing is lost.
Like ``records``, parsing never fails on shape.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

from jobs.providers.records import (
    MARKER_KEY,
    CheckpointInfo,
    ErrorInfo,
    EventInfo,
    FileInfo,
    Hyperparameter,
    JobInfo,
    _dict,
    _int,
    _str,
    _timestamp,
)

# Together's statuses onto Tuneboard's lifecycle (OpenAI's words); the provider's own word
# is kept in ``provider_status`` and shown beside it. A word not listed here is stored as it
# is and followed like any unfinished job.
STATUSES = {
    "pending": "validating_files",
    "queued": "queued",
    "running": "running",
    "compressing": "running",
    "uploading": "running",
    "cancel_requested": "running",
    "cancelled": "cancelled",
    "error": "failed",
    "completed": "succeeded",
}
TERMINAL = frozenset({"cancelled", "error", "completed"})
METHODS = {"sft": "supervised", "dpo": "dpo"}

# The marker a launch carries in the suffix (Together jobs have no metadata): it comes back
# in ``suffix`` and in ``model_output_name``, so a retried launch finds its job.
MARKER_PREFIX = "tb"
MARKER_HEX = 24
MARKER_LENGTH = len(MARKER_PREFIX) + MARKER_HEX
MAX_SUFFIX = 40
_MARKER = re.compile(rf"(?:^|-){MARKER_PREFIX}([0-9a-f]{{{MARKER_HEX}}})(?:$|[-:/])")

# Together's metric names onto the series Tuneboard draws; the rest are kept as extras with
# ``/`` made ``_``. Together evaluates on the whole validation file (``n_evals`` times), so
# its eval loss is a full-validation loss.
METRIC_NAMES = {
    "train/loss": "train_loss",
    "train/global_step": "step",
    "train/epoch": "epoch",
    "eval/loss": "full_valid_loss",
    "train/learning_rate": "learning_rate",
    "train/grad_norm": "grad_norm",
    "train/num_input_tokens_seen": "tokens_seen",
}


def marker_value(job_id: str) -> str:
    """The part of a Tuneboard job id (a UUID) carried in the suffix."""
    return job_id.replace("-", "").lower()[:MARKER_HEX]


def suffix_with_marker(suffix: str | None, value: str) -> str:
    """The user's suffix (shortened when needed) followed by the marker, within the limit."""
    tag = f"{MARKER_PREFIX}{marker_value(value)}"
    room = MAX_SUFFIX - len(tag) - 1
    own = re.sub(r"[^A-Za-z0-9_.-]", "-", suffix or "")[: max(0, room)].strip("-")
    return f"{own}-{tag}" if own else tag


def marker_in(*texts: str | None) -> str | None:
    for text in texts:
        if text:
            found = _MARKER.search(text)
            if found:
                return found.group(1)
    return None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def hyperparameters_of(d: dict[str, Any]) -> dict[str, Hyperparameter]:
    """The job's training settings, flat, under Together's own names (each with its unit and
    meaning declared by the adapter's parameters)."""
    out: dict[str, Hyperparameter] = {}
    for key in (
        "n_epochs", "n_checkpoints", "n_evals", "batch_size", "learning_rate", "warmup_ratio",
        "max_grad_norm", "weight_decay", "max_seq_length",
    ):  # fmt: skip
        value = d.get(key)
        number = _number(value)
        if number is not None:
            out[key] = number
        elif isinstance(value, str) and value:
            out[key] = value  # "max" batch size
    scheduler = _dict(d.get("lr_scheduler"))
    if _str(scheduler.get("lr_scheduler_type")):
        out["lr_scheduler"] = str(scheduler["lr_scheduler_type"])
        for key, value in _dict(scheduler.get("lr_scheduler_args")).items():
            if (number := _number(value)) is not None:
                out[str(key)] = number
    training_type = _dict(d.get("training_type"))
    kind = (_str(training_type.get("type")) or "").lower()
    if kind:
        out["training_type"] = "lora" if kind == "lora" else kind
    for key in ("lora_r", "lora_alpha", "lora_dropout"):
        if (number := _number(training_type.get(key))) is not None:
            out[key] = number
    if _str(training_type.get("lora_trainable_modules")):
        out["lora_trainable_modules"] = str(training_type["lora_trainable_modules"])
    method = _dict(d.get("training_method"))
    for key in ("dpo_beta", "rpo_alpha", "simpo_gamma"):
        if (number := _number(method.get(key))) is not None:
            out[key] = number
    train_on_inputs = method.get("train_on_inputs", d.get("train_on_inputs"))
    if isinstance(train_on_inputs, bool):
        out["train_on_inputs"] = "true" if train_on_inputs else "false"
    elif isinstance(train_on_inputs, str) and train_on_inputs:
        out["train_on_inputs"] = train_on_inputs
    return out


def job_info(d: dict[str, Any], *, now: int | None = None) -> JobInfo:
    word = _str(d.get("status")) or "unknown"
    status = STATUSES.get(word, word)
    method = METHODS.get(
        (_str(_dict(d.get("training_method")).get("method")) or "sft"), "supervised"
    )
    output = _str(d.get("model_output_name") or d.get("output_name"))
    finished = _timestamp(d.get("updated_at")) if word in TERMINAL else None
    progress = _dict(d.get("progress"))
    remaining = _int(progress.get("seconds_remaining"))
    estimated_finish = (
        now + remaining
        if now is not None and progress.get("estimate_available") is True and remaining
        else None
    )
    error = ErrorInfo.from_api(d.get("error")) if isinstance(d.get("error"), dict) else None
    if error is None and word == "error":
        message = _str(d.get("error")) or _str(d.get("message"))
        error = ErrorInfo(
            code="error", message=message or "The job failed at Together.", param=None
        )
    marker = marker_in(_str(d.get("suffix")), output)
    return JobInfo(
        id=str(d.get("id", "")),
        status=status,
        model=_str(d.get("model")),
        created_at=_timestamp(d.get("created_at")),
        finished_at=finished,
        fine_tuned_model=output if word == "completed" else None,
        training_file=_str(d.get("training_file")),
        validation_file=_str(d.get("validation_file")) or None,
        hyperparameters=hyperparameters_of(d),
        method=method,
        trained_tokens=_int(d.get("token_count")),
        estimated_finish=estimated_finish,
        error=error,
        result_files=[],
        seed=_int(d.get("random_seed")),
        # Together keeps no metadata; the launch marker stands in for Tuneboard's own key.
        metadata={MARKER_KEY: marker} if marker else None,
        integrations=None,
        raw=d,
        provider_status=word,
        started_at=_timestamp(d.get("started_at")),
        suffix=_own_suffix(_str(d.get("suffix"))),
    )


def _own_suffix(suffix: str | None) -> str | None:
    """The suffix without the launch marker Tuneboard added to it."""
    if not suffix:
        return None
    own = _MARKER.sub("", suffix).strip("-")
    return own or None


def event_id(job_id: str, d: dict[str, Any]) -> str:
    """Together's events carry no id: a stable one from what they do carry."""
    given = _str(d.get("hash"))
    if given:
        return f"{job_id}:{given}"[:100]
    digest = hashlib.sha1(  # noqa: S324 - a name, not a secret
        "\x1f".join(
            str(d.get(k, "")) for k in ("created_at", "type", "message", "step", "checkpoint_path")
        ).encode(),
    ).hexdigest()[:20]
    return f"{job_id}:{digest}"[:100]


def event_info(job_id: str, d: dict[str, Any]) -> EventInfo:
    level = _str(d.get("level")) or "info"
    if level.startswith("legacy_i"):
        level = level.removeprefix("legacy_i")  # legacy_iwarning, legacy_ierror
    elif level.startswith("legacy_"):
        level = level.removeprefix("legacy_")
    data = {
        key: value
        for key in ("step", "total_steps", "token_count", "checkpoint_path", "model_path")
        if (value := d.get(key)) not in (None, "")
    }
    kind = _str(d.get("type")) or "message"
    return EventInfo(
        id=event_id(job_id, d),
        created_at=_timestamp(d.get("created_at")),
        level=level if level in ("info", "warning", "error") else "info",
        message=_str(d.get("message")) or kind.replace("_", " "),
        type=kind,
        data=data,
    )


def checkpoint_info(job_id: str, d: dict[str, Any], output: str | None) -> CheckpointInfo:
    step = _int(d.get("step"))
    kind = _str(d.get("checkpoint_type")) or ""
    # ``{job}:{step}`` is what Together's ``from_checkpoint`` takes.
    checkpoint_id = f"{job_id}:{step}" if step is not None else f"{job_id}:{kind or 'final'}"
    return CheckpointInfo(
        id=checkpoint_id,
        created_at=_timestamp(d.get("created_at")),
        step_number=step,
        fine_tuned_model_checkpoint=(f"{output}:{step}" if output and step is not None else None)
        or _str(d.get("path")),
        metrics={},
        fine_tuning_job_id=job_id,
    )


def metric_row(d: dict[str, Any]) -> dict[str, float]:
    """One flat Together dictionary (``train/loss``…) under the names ``jobs.metrics`` reads."""
    row: dict[str, float] = {}
    for key, value in d.items():
        number = _number(value)
        if number is None:
            continue
        name = METRIC_NAMES.get(str(key)) or re.sub(r"[^A-Za-z0-9_]+", "_", str(key)).strip("_")
        if name:
            row[name] = float(number)
    return row


def file_info(d: dict[str, Any]) -> FileInfo:
    processed = d.get("Processed", d.get("processed"))
    stage = str(d.get("processing_status") or "").upper()
    if stage in ("FAILED", "INVALID_FORMAT"):
        status = "error"
    elif stage in ("PENDING", "QUEUED", "RUNNING") or processed is False:
        status = "uploaded"
    else:
        status = "processed"  # a file that says nothing has been accepted, as with OpenAI
    return FileInfo(
        id=str(d.get("id", "")),
        bytes=_int(d.get("bytes")),
        created_at=_timestamp(d.get("created_at")),
        filename=_str(d.get("filename")),
        purpose=_str(d.get("purpose")),
        status=status,
    )
