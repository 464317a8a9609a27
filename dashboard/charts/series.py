"""Plain-data model of one run's curves, shared by the figures, the exports and the diagnosis.

Nothing here touches the database: the selectors turn ``MetricPoint`` rows (``.values()``
dicts) and ``Checkpoint`` rows into a ``RunSeries`` with ``RunSeries.from_rows``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Point = tuple[int, float]  # (step, value)
XAxis = Literal["step", "epoch", "tokens"]
X_AXES: tuple[str, ...] = get_args(XAxis)

LOSS_METRICS: tuple[str, ...] = ("train_loss", "valid_loss", "full_valid_loss")
ACCURACY_METRICS: tuple[str, ...] = ("train_accuracy", "valid_accuracy", "full_valid_accuracy")
METRICS: tuple[str, ...] = LOSS_METRICS + ACCURACY_METRICS

# Provider spellings (metrics events, checkpoint ``metrics``) of the six columns.
METRIC_ALIASES: dict[str, str] = {
    **{name: name for name in METRICS},
    "train_mean_token_accuracy": "train_accuracy",
    "valid_mean_token_accuracy": "valid_accuracy",
    "full_valid_mean_token_accuracy": "full_valid_accuracy",
}


@dataclass
class Series:
    """One drawable line: parallel x and y lists (missing values already removed)."""

    name: str
    x: list[float]
    y: list[float]


@dataclass(frozen=True)
class CheckpointMark:
    step: int
    model_id: str
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BestPoint:
    metric: str  # e.g. "full_valid_loss", or "valid_loss" when the run has no full validation
    step: int
    value: float


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, or None (None, NaN, ±inf, bools, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def clean_points(points: Iterable[tuple[Any, Any]]) -> list[Point]:
    """Finite points sorted by step; a repeated step keeps its last value (as the ingest does)."""
    by_step: dict[int, float] = {}
    for step, value in points:
        number = finite_number(value)
        if number is not None and finite_number(step) is not None:
            by_step[int(step)] = number
    return sorted(by_step.items())


def _positive(value: Any) -> float | None:
    number = finite_number(value)
    return number if number is not None and number > 0 else None


@dataclass
class RunSeries:
    """Step-indexed metric columns of one run plus what converting steps needs.

    Each metric is a sparse list of (step, value): a step where the metric was not measured is
    simply absent, so validation stays a handful of points and is never densified.
    ``colour`` overrides the palette colour a comparison would give the run by position.
    """

    label: str
    run_id: str = ""
    train_loss: list[Point] = field(default_factory=list)
    valid_loss: list[Point] = field(default_factory=list)
    full_valid_loss: list[Point] = field(default_factory=list)
    train_accuracy: list[Point] = field(default_factory=list)
    valid_accuracy: list[Point] = field(default_factory=list)
    full_valid_accuracy: list[Point] = field(default_factory=list)
    steps_per_epoch: float | None = None
    total_steps: int | None = None
    tokens_per_step: float | None = None
    checkpoints: list[CheckpointMark] = field(default_factory=list)
    colour: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Normalised once here so every consumer can rely on sorted, finite, unique steps.
        for name in METRICS:
            setattr(self, name, clean_points(getattr(self, name)))
        self.checkpoints = sorted(self.checkpoints, key=lambda mark: mark.step)
        self.steps_per_epoch = _positive(self.steps_per_epoch)
        self.tokens_per_step = _positive(self.tokens_per_step)

    # --- construction from plain rows ------------------------------------------------

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Mapping[str, Any]],
        *,
        label: str,
        run_id: str = "",
        total_steps: int | None = None,
        n_epochs: int | None = None,
        steps_per_epoch: float | None = None,
        trained_tokens: int | None = None,
        tokens_per_step: float | None = None,
        checkpoints: Iterable[CheckpointMark | Mapping[str, Any]] = (),
        colour: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
    ) -> RunSeries:
        """Build from ``{"step": …, "train_loss": …, …}`` rows (``MetricPoint.values()``;
        provider spellings such as ``train_mean_token_accuracy`` are accepted too).

        ``steps_per_epoch`` defaults to ``total_steps / n_epochs`` and ``tokens_per_step`` to
        ``trained_tokens / total_steps``; checkpoints may be ``CheckpointMark`` objects or
        ``{"step", "model_name" | "model_id", "metrics"}`` mappings.
        """
        columns: dict[str, list[tuple[Any, Any]]] = {name: [] for name in METRICS}
        for row in rows:
            for key, value in row.items():
                column = METRIC_ALIASES.get(key)
                if column is not None:
                    columns[column].append((row.get("step"), value))
        total = int(total_steps) if _positive(total_steps) else None
        n_epochs_number = _positive(n_epochs)
        if steps_per_epoch is None and total and n_epochs_number:
            steps_per_epoch = total / n_epochs_number
        trained = _positive(trained_tokens)
        if tokens_per_step is None and trained and total:
            tokens_per_step = trained / total
        return cls(
            label=label,
            run_id=run_id,
            steps_per_epoch=steps_per_epoch,
            total_steps=total,
            tokens_per_step=tokens_per_step,
            checkpoints=[checkpoint_mark(item) for item in checkpoints],
            colour=colour,
            hyperparameters=dict(hyperparameters or {}),
            **columns,  # type: ignore[arg-type]
        )

    # --- access ----------------------------------------------------------------------

    def metric(self, name: str) -> list[Point]:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; expected one of {METRICS}")
        points: list[Point] = getattr(self, name)
        return points

    def value_at(self, name: str, step: int) -> float | None:
        for point_step, value in self.metric(name):
            if point_step == step:
                return value
        return None

    @property
    def last_step(self) -> int | None:
        steps = [points[-1][0] for points in map(self.metric, METRICS) if points]
        return max(steps) if steps else None

    @property
    def end_step(self) -> int | None:
        """Where the run ends: ``total_steps`` when known (a live run's planned length)."""
        last = self.last_step
        if self.total_steps is None:
            return last
        return max(self.total_steps, last or 0)

    @property
    def n_epochs(self) -> int | None:
        if self.steps_per_epoch is None or self.total_steps is None:
            return None
        return max(1, round(self.total_steps / self.steps_per_epoch))

    def epoch_of(self, step: int) -> int | None:
        """1-based epoch a step belongs to (the epoch-end step belongs to the epoch it ends)."""
        if self.steps_per_epoch is None:
            return None
        return max(1, math.ceil(step / self.steps_per_epoch - 1e-9))

    def epoch_end_steps(self) -> list[int]:
        """Steps where an epoch ends, up to the run's end (checkpoints are made there)."""
        end = self.end_step
        if self.steps_per_epoch is None or end is None:
            return []
        ends = []
        epoch = 1
        while (step := round(epoch * self.steps_per_epoch)) <= end:
            ends.append(step)
            epoch += 1
        return ends

    # --- x axis ----------------------------------------------------------------------

    def supports(self, axis: str) -> bool:
        if axis == "step":
            return True
        if axis == "epoch":
            return self.steps_per_epoch is not None
        if axis == "tokens":
            return self.tokens_per_step is not None
        return False

    def x_of(self, steps: Sequence[float], axis: str) -> list[float]:
        """Steps converted to ``axis``: epoch = step / steps_per_epoch, tokens = step ×
        tokens_per_step. Raises when the run lacks what the conversion needs."""
        if axis not in X_AXES:
            raise ValueError(f"unknown x axis {axis!r}; expected one of {X_AXES}")
        if not self.supports(axis):
            raise ValueError(f"run {self.label!r} has no data for an x axis in {axis}")
        if axis == "epoch":
            assert self.steps_per_epoch is not None
            return [step / self.steps_per_epoch for step in steps]
        if axis == "tokens":
            assert self.tokens_per_step is not None
            return [step * self.tokens_per_step for step in steps]
        return [float(step) for step in steps]

    def series(self, name: str, axis: str = "step") -> Series:
        points = self.metric(name)
        steps = [step for step, _ in points]
        return Series(name=name, x=self.x_of(steps, axis), y=[value for _, value in points])


def checkpoint_mark(item: CheckpointMark | Mapping[str, Any]) -> CheckpointMark:
    if isinstance(item, CheckpointMark):
        return item
    metrics = item.get("metrics") or {}
    return CheckpointMark(
        step=int(item["step"]),
        model_id=str(item.get("model_id") or item.get("model_name") or ""),
        metrics={
            str(key): number
            for key, value in metrics.items()
            if (number := finite_number(value)) is not None
        },
    )


def effective_x_axis(runs: Sequence[RunSeries], requested: str) -> str:
    """``requested`` when every run can be drawn on it, else ``"step"`` (always possible), so a
    comparison never mixes units."""
    if requested not in X_AXES:
        raise ValueError(f"unknown x axis {requested!r}; expected one of {X_AXES}")
    return requested if all(run.supports(requested) for run in runs) else "step"


def best_point(run: RunSeries, kind: Literal["loss", "accuracy"] = "loss") -> BestPoint | None:
    """Best full-validation point (lowest loss / highest accuracy), falling back to the
    mini-batch validation series when the run has no full validation; ties go to the earliest
    step (the cheaper checkpoint)."""
    if kind not in ("loss", "accuracy"):
        raise ValueError(f"unknown kind {kind!r}")
    names = (f"full_valid_{kind}", f"valid_{kind}")
    for name in names:
        points = run.metric(name)
        if not points:
            continue
        if kind == "loss":
            step, value = min(points, key=lambda point: (point[1], point[0]))
        else:
            step, value = min(points, key=lambda point: (-point[1], point[0]))
        return BestPoint(metric=name, step=step, value=value)
    return None


SUMMARY_METRICS: tuple[str, ...] = (
    "last_step",
    "final_train_loss",
    "final_valid_loss",
    "final_full_valid_loss",
    "best_full_valid_loss",
    "best_full_valid_step",
    "best_valid_loss",
    "best_valid_step",
    "final_train_accuracy",
    "final_valid_accuracy",
    "final_full_valid_accuracy",
    "best_full_valid_accuracy",
    "best_full_valid_accuracy_step",
)


def summary_metrics(run: RunSeries) -> dict[str, float | int | None]:
    """The comparison table's numbers for one run (keys in ``SUMMARY_METRICS`` order)."""

    def final(name: str) -> float | None:
        points = run.metric(name)
        return points[-1][1] if points else None

    def lowest(name: str) -> Point | None:
        points = run.metric(name)
        return min(points, key=lambda point: (point[1], point[0])) if points else None

    def highest(name: str) -> Point | None:
        points = run.metric(name)
        return min(points, key=lambda point: (-point[1], point[0])) if points else None

    best_full, best_valid = lowest("full_valid_loss"), lowest("valid_loss")
    best_accuracy = highest("full_valid_accuracy")
    return {
        "last_step": run.last_step,
        "final_train_loss": final("train_loss"),
        "final_valid_loss": final("valid_loss"),
        "final_full_valid_loss": final("full_valid_loss"),
        "best_full_valid_loss": best_full[1] if best_full else None,
        "best_full_valid_step": best_full[0] if best_full else None,
        "best_valid_loss": best_valid[1] if best_valid else None,
        "best_valid_step": best_valid[0] if best_valid else None,
        "final_train_accuracy": final("train_accuracy"),
        "final_valid_accuracy": final("valid_accuracy"),
        "final_full_valid_accuracy": final("full_valid_accuracy"),
        "best_full_valid_accuracy": best_accuracy[1] if best_accuracy else None,
        "best_full_valid_accuracy_step": best_accuracy[0] if best_accuracy else None,
    }
