"""What providers return, as frozen records parsed tolerantly from OpenAI-shaped JSON.

Real responses drift from the spec (see docs/openai-fine-tuning-api.md §7 and §9): unknown
keys appear, optional keys go missing, ``error`` is ``{}`` on healthy jobs, ``data`` is
``{}`` or null, hyperparameters are ``"auto"`` or numbers, ``paused`` is a status. Parsing
therefore never fails on shape; it keeps what it understands and defaults the rest.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Hyperparameter = int | float | str
# A provider without job metadata echoes a launch's marker (the first hex digits of the
# Tuneboard job id) in another field; its adapter reports it under this key.
MARKER_KEY = "tuneboard_marker"
MARKER_PATTERN = re.compile(r"[0-9a-f]{8,32}")


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None
    return None


def _timestamp(value: Any) -> int | None:
    """Unix seconds; floats are truncated, ISO 8601 strings (older Azure) converted."""
    number = _int(value)
    if number is not None or not isinstance(value, str):
        return number
    try:
        return int(datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _float_metrics(value: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for key, item in _dict(value).items():
        if not isinstance(item, int | float) or isinstance(item, bool):
            continue
        try:
            number = float(item)
        except OverflowError:  # an integer beyond any float
            continue
        # NaN and Infinity parse as floats but are no measurement (and JSON columns refuse them).
        if math.isfinite(number):
            metrics[str(key)] = number
    return metrics


@dataclass(frozen=True)
class ErrorInfo:
    code: str | None
    message: str | None
    param: str | None

    @classmethod
    def from_api(cls, d: Any) -> ErrorInfo | None:
        """None for ``null``, ``{}`` or all-null fields: the real API sends those on jobs
        that have not failed."""
        if not isinstance(d, dict):
            return None
        code, message, param = _str(d.get("code")), _str(d.get("message")), _str(d.get("param"))
        if not (code or message or param):
            return None
        return cls(code=code, message=message, param=param)


@dataclass(frozen=True)
class FileInfo:
    id: str
    bytes: int | None
    created_at: int | None
    filename: str | None
    purpose: str | None
    status: str | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> FileInfo:
        return cls(
            id=str(d.get("id", "")),
            bytes=_int(d.get("bytes")),
            created_at=_timestamp(d.get("created_at")),
            filename=_str(d.get("filename")),
            purpose=_str(d.get("purpose")),
            # Deprecated upstream and absent from some responses; a file that exists and
            # says nothing has been accepted.
            status=_str(d.get("status")) or "processed",
        )


@dataclass(frozen=True)
class JobSpec:
    """A fine-tuning job to create. ``hyperparameters`` holds only the keys to set; values
    of ``"auto"`` (or None) are not sent, which lets the provider choose, as "auto" does."""

    model: str
    training_file: str
    validation_file: str | None = None
    method: str = "supervised"
    hyperparameters: Mapping[str, Hyperparameter | None] = field(default_factory=dict)
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] | None = None
    integrations: list[dict[str, Any]] | None = None


def _openai_suffix(d: dict[str, Any]) -> str | None:
    raw = d.get("user_provided_suffix")
    if isinstance(raw, str):
        return raw
    parts = (_str(d.get("fine_tuned_model")) or "").split(":")
    return parts[3] if len(parts) >= 5 and parts[0] == "ft" else None


@dataclass(frozen=True)
class JobInfo:
    id: str
    status: str
    model: str | None
    created_at: int | None
    finished_at: int | None
    fine_tuned_model: str | None
    training_file: str | None
    validation_file: str | None
    hyperparameters: dict[str, Hyperparameter]
    method: str
    trained_tokens: int | None
    estimated_finish: int | None
    error: ErrorInfo | None
    result_files: list[str]
    seed: int | None
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None
    raw: dict[str, Any] = field(repr=False, compare=False)
    # The provider's own word for the status, when it has words of its own (``status`` is
    # always Tuneboard's lifecycle); shown beside it.
    provider_status: str | None = None
    started_at: int | None = None
    suffix: str | None = None  # as the user gave it (without a launch marker)

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> JobInfo:
        method_block = _dict(d.get("method"))
        method = _str(method_block.get("type")) or "supervised"
        # The top-level form is a deprecated mirror (null on some DPO jobs); the method's
        # own block is authoritative and carries method-specific keys such as beta.
        method_hyperparameters = _dict(_dict(method_block.get(method)).get("hyperparameters"))
        hyperparameters = {**_dict(d.get("hyperparameters")), **method_hyperparameters}
        metadata = d.get("metadata")
        integrations = d.get("integrations")
        result_files = d.get("result_files")
        return cls(
            id=str(d.get("id", "")),
            status=_str(d.get("status")) or "unknown",
            model=_str(d.get("model")),
            created_at=_timestamp(d.get("created_at")),
            finished_at=_timestamp(d.get("finished_at")),
            fine_tuned_model=_str(d.get("fine_tuned_model")),
            training_file=_str(d.get("training_file")),
            validation_file=_str(d.get("validation_file")),
            hyperparameters={
                str(k): v for k, v in hyperparameters.items() if isinstance(v, int | float | str)
            },
            method=method,
            trained_tokens=_int(d.get("trained_tokens")),
            estimated_finish=_timestamp(d.get("estimated_finish")),
            error=ErrorInfo.from_api(d.get("error")),
            result_files=[str(f) for f in result_files] if isinstance(result_files, list) else [],
            seed=_int(d.get("seed")),
            metadata={str(k): str(v) for k, v in metadata.items()}
            if isinstance(metadata, dict)
            else None,
            integrations=[i for i in integrations if isinstance(i, dict)]
            if isinstance(integrations, list)
            else None,
            raw=d,
            provider_status=_str(d.get("status")),
            suffix=_openai_suffix(d),
        )


@dataclass(frozen=True)
class EventInfo:
    id: str
    created_at: int | None
    level: str
    message: str
    type: str
    data: dict[str, Any]

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> EventInfo:
        return cls(
            id=str(d.get("id", "")),
            created_at=_timestamp(d.get("created_at")),
            level=_str(d.get("level")) or "info",
            message=_str(d.get("message")) or "",
            type=_str(d.get("type")) or "message",
            data=_dict(d.get("data")),
        )


@dataclass(frozen=True)
class CheckpointInfo:
    id: str
    created_at: int | None
    step_number: int | None
    fine_tuned_model_checkpoint: str | None
    metrics: dict[str, float]
    fine_tuning_job_id: str | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> CheckpointInfo:
        return cls(
            id=str(d.get("id", "")),
            created_at=_timestamp(d.get("created_at")),
            step_number=_int(d.get("step_number")),
            fine_tuned_model_checkpoint=_str(d.get("fine_tuned_model_checkpoint")),
            metrics=_float_metrics(d.get("metrics")),
            fine_tuning_job_id=_str(d.get("fine_tuning_job_id")),
        )


@dataclass(frozen=True)
class ModelInfo:
    id: str
    created: int | None
    owned_by: str | None

    @classmethod
    def from_api(cls, d: dict[str, Any]) -> ModelInfo:
        return cls(
            id=str(d.get("id", "")),
            created=_timestamp(d.get("created")),
            owned_by=_str(d.get("owned_by")),
        )


@dataclass(frozen=True)
class ChatResult:
    content: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_seconds: float
    model: str | None
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, d: dict[str, Any], *, latency_seconds: float) -> ChatResult:
        choices = d.get("choices")
        first = _dict(choices[0]) if isinstance(choices, list) and choices else {}
        usage = _dict(d.get("usage"))
        return cls(
            content=_str(_dict(first.get("message")).get("content")),
            finish_reason=_str(first.get("finish_reason")),
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            total_tokens=_int(usage.get("total_tokens")),
            latency_seconds=latency_seconds,
            model=_str(d.get("model")),
            raw=d,
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    data: list[T]
    has_more: bool

    @property
    def last_id(self) -> str | None:
        """The cursor for the next page (``after=``)."""
        return getattr(self.data[-1], "id", None) if self.data else None
