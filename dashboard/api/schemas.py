"""What the API reads and writes. Every bound that the database has is stated here too, so bad
input is a 400 with the field named, never a database error."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Schema
from pydantic import Field, StringConstraints

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1

Step = Annotated[int, Field(ge=0, le=INT32_MAX)]
DatasetId = Annotated[int, Field(ge=1, le=INT64_MAX)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50)]
# Free key/values (training arguments, event details): flat, as a table can show them.
Scalar = str | int | float | bool | None
Values = dict[Annotated[str, StringConstraints(max_length=200)], Scalar | list[Scalar]]


class Error(Schema):
    detail: str
    errors: list[dict[str, str]] = Field(
        default_factory=list, description="One entry per field: {field, message}."
    )


class GuardrailIn(Schema):
    kind: Literal["overfitting", "divergence", "accuracy_stuck", "spend_cap", "time_limit"]
    params: dict[Annotated[str, StringConstraints(max_length=40)], float] = Field(
        default_factory=dict,
        description="overfitting: evals, rise_pct; divergence: spike_factor, window; "
        "accuracy_stuck: evals, min_gain; spend_cap: usd; time_limit: minutes.",
    )
    action: Literal["notify", "cancel"] = Field(
        "notify", description="cancel: the training script is told to stop."
    )


class RunIn(Schema):
    external_id: str = Field(
        "",
        max_length=100,
        description="Your own id of the run (e.g. the output directory): creating a run with "
        "the same external id again returns the first one.",
    )
    name: str = Field("", max_length=200)
    notes: str = Field("", max_length=10_000)
    base_model: str = Field("", max_length=300)
    method: Literal["supervised", "dpo"] = "supervised"
    hyperparameters: Values = Field(
        default_factory=dict, description="Free key/values (the training arguments)."
    )
    training_dataset: DatasetId | None = None
    validation_dataset: DatasetId | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    total_steps: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None
    epochs: Annotated[float, Field(gt=0, le=1e6)] | None = None
    connection: str = Field(
        "", max_length=100, description="A self-hosted connection's name; empty: the default."
    )
    guardrails: list[GuardrailIn] | None = Field(
        None, max_length=5, description="Rules watching the run; none given: the connection's."
    )


class RunOut(Schema):
    id: str
    url: str
    external_id: str
    name: str
    status: str
    connection: str
    provider: str = Field(description="The connection's family label (e.g. “Self-hosted”).")
    base_model: str
    method: str
    hyperparameters: dict[str, Any]
    tags: list[str]
    training_dataset: int | None
    validation_dataset: int | None
    total_steps: int | None
    last_step: int | None
    final_train_loss: float | None
    best_full_valid_loss: float | None
    best_full_valid_step: int | None
    trained_tokens: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    estimated_finish: datetime | None
    error: str
    stop_requested: bool = Field(description="The run was asked to stop (guardrail or person).")
    guardrails: list[dict[str, Any]] = Field(
        description="Each guardrail: kind, params, action, enabled, and its firing if it fired."
    )


class RunPage(Schema):
    count: int
    results: list[RunOut]


class PointIn(Schema):
    step: Step
    values: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        description="Series name → value. transformers' “loss” and “eval_loss” are taken as "
        "train_loss and full_valid_loss; non-finite values are dropped."
    )


class MetricsIn(Schema):
    points: list[PointIn] = Field(max_length=5000)


class Directive(Schema):
    """What the training script should do now (read by the client after every write)."""

    stop: bool = False


class MetricsOut(Schema):
    points: int
    dropped: int
    control: Directive


class PointOut(Schema):
    step: int
    values: dict[str, float]


class MetricsPage(Schema):
    points: list[PointOut]
    next_after_step: int | None = Field(description="Pass as after_step for the next page.")


class CheckpointIn(Schema):
    step: Step
    uri: str = Field("", max_length=300, description="Where the checkpoint lies (path or URI).")
    metrics: dict[Annotated[str, StringConstraints(max_length=64)], float] = Field(
        default_factory=dict
    )


class CheckpointOut(Schema):
    step: int
    uri: str
    metrics: dict[str, Any]
    created_at: datetime
    deleted: bool


class EventIn(Schema):
    id: str = Field("", max_length=100, description="Your id: sent twice, stored once.")
    message: str = Field(min_length=1, max_length=10_000)
    level: Literal["info", "warn", "error"] = "info"
    created_at: datetime | None = None
    data: Values = Field(default_factory=dict)


class EventsIn(Schema):
    events: list[EventIn] = Field(min_length=1, max_length=1000)


class EventsOut(Schema):
    created: int
    control: Directive


class EventOut(Schema):
    id: str
    created_at: datetime
    level: str
    type: str
    message: str
    data: dict[str, Any]


class StatusIn(Schema):
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    message: str = Field("", max_length=10_000, description="Why it failed or was cancelled.")
    total_steps: Annotated[int, Field(ge=1, le=INT32_MAX)] | None = None


class DatasetOut(Schema):
    id: int
    url: str
    name: str
    description: str
    tags: list[str]
    format: str
    status: str
    size: int
    sha256: str
    line_count: int
    n_examples: int | None
    valid_for: dict[str, Any]
    uploaded_at: datetime
    download: str


class DatasetPage(Schema):
    count: int
    results: list[DatasetOut]
