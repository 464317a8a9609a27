"""Builders and curve statistics shared by the simulation tests."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from sandbox.simulation import Hyperparameters, StepMetrics, TrainingRun, TrainingSpec

MODEL = "gpt-4o-mini-2024-07-18"
SEEDS = range(5)


def make_run(
    n_examples: int,
    n_epochs: int,
    *,
    batch_size: int = 1,
    lr: float = 0.05,
    seed: int = 0,
    n_valid: int = 10,
    tokens_per_example: int = 400,
    method: str = "supervised",
    beta: float | None = None,
) -> TrainingRun:
    spec = TrainingSpec(
        method=method,
        n_examples=n_examples,
        n_valid_examples=n_valid,
        tokens_per_epoch=n_examples * tokens_per_example,
        seed=seed,
        model=MODEL,
    )
    return TrainingRun(spec, Hyperparameters(n_epochs, batch_size, lr, beta))


def all_metrics(run: TrainingRun) -> list[StepMetrics]:
    return [run.metrics(step) for step in range(1, run.total_steps + 1)]


def train_losses(run: TrainingRun) -> list[float]:
    return [m.train_loss for m in all_metrics(run)]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def head(values: Sequence[float], n: int = 5) -> float:
    """Mean of the first n values: the noise-averaged start of a curve."""
    return mean(values[:n])


def tail(values: Sequence[float], n: int = 10) -> float:
    """Mean of the last n values: the noise-averaged end of a curve."""
    return mean(values[-n:])


def centred_average(values: Sequence[float], width: int = 9) -> list[float]:
    half = width // 2
    out = []
    for i in range(len(values)):
        window = values[max(0, i - half) : i + half + 1]
        out.append(mean(window))
    return out


def spikes(values: Sequence[float], *, window: int = 15, jump: float = 1.5) -> int:
    """Steps whose value exceeds the running median of the previous ``window`` steps by more
    than ``jump`` times."""
    return sum(
        values[i] > jump * statistics.median(values[i - window : i])
        for i in range(window, len(values))
    )


def late_fall_share(values: Sequence[float], *, window: int = 10) -> float:
    """How much a curve still falls at its end: the drop between the means of its third and
    fourth quarters, as a share of its whole drop (window means at both ends). About 0 for a
    converged curve; 0.1 or more for one still falling steeply."""
    quarter = len(values) // 4
    third = mean(values[2 * quarter : 3 * quarter])
    fourth = mean(values[3 * quarter :])
    return (third - fourth) / (head(values, window) - tail(values, window))


def full_valid_by_epoch(run: TrainingRun) -> list[float]:
    values = []
    for step in run.epoch_end_steps():
        full = run.metrics(step).full_valid_loss
        assert full is not None
        values.append(full)
    return values


def overfit_onset(values: Sequence[float], *, rise: float = 1.1) -> int | None:
    """1-based epoch at which full validation loss first exceeds its minimum so far by
    ``rise`` times, or None."""
    lowest = values[0]
    for epoch, value in enumerate(values, start=1):
        lowest = min(lowest, value)
        if value > rise * lowest:
            return epoch
    return None
