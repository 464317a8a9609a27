"""Guardrail rules: pure functions over a run's curves and spend (no Django), so each is tested
on synthetic curves. A rule answers with a ``Firing`` (the step it fired at and why) or None.

Rules, each with its parameters (``DEFAULTS``):

* ``overfitting``: the validation loss (full-validation where the run has it) rose at ``evals``
  consecutive evaluations, each time by more than ``rise_pct`` percent, while the training
  loss fell over the same steps.
* ``divergence``: a loss that is not a number, or a training loss above ``spike_factor`` times
  the median of the ``window`` values before it.
* ``accuracy_stuck``: the last ``evals`` accuracy values (validation, else training) all lie
  within ``min_gain`` of each other.
* ``spend_cap``: what the run has cost so far is above ``usd``.
* ``time_limit``: the run has been running longer than ``minutes``.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

Points = Sequence[tuple[int, float]]  # (step, value), oldest first

KINDS = ("overfitting", "divergence", "accuracy_stuck", "spend_cap", "time_limit")
ACTIONS = ("notify", "pause", "cancel")
LABELS = {
    "overfitting": "Overfitting",
    "divergence": "Divergence",
    "accuracy_stuck": "Accuracy stuck",
    "spend_cap": "Spend cap",
    "time_limit": "Time limit",
}
DEFAULTS: dict[str, dict[str, float]] = {
    "overfitting": {"evals": 3, "rise_pct": 1.0},
    "divergence": {"spike_factor": 3.0, "window": 10},
    "accuracy_stuck": {"evals": 5, "min_gain": 0.005},
    "spend_cap": {"usd": 100.0},
    "time_limit": {"minutes": 24 * 60},
}
# Bounds a person may set, per parameter.
BOUNDS: dict[str, tuple[float, float]] = {
    "evals": (2, 100),
    "rise_pct": (0.0, 1000.0),
    "spike_factor": (1.1, 1000.0),
    "window": (3, 1000),
    "min_gain": (0.0, 1.0),
    "usd": (0.0, 1e9),
    "minutes": (1, 525_600),
}
INTEGER_PARAMETERS = frozenset({"evals", "window"})


@dataclass(frozen=True)
class Observation:
    train_loss: Points = ()
    valid_loss: Points = ()  # full-validation loss where the run reports it, else validation
    accuracy: Points = ()  # validation accuracy where reported, else training accuracy
    non_finite_steps: Sequence[int] = ()  # steps where a loss came as NaN or infinity
    spend_usd: float | None = None
    running_seconds: float | None = None
    last_step: int | None = None


@dataclass(frozen=True)
class Firing:
    step: int | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def parameters(kind: str, given: dict[str, Any] | None) -> dict[str, float]:
    """The rule's parameters: the given ones within their bounds, the defaults for the rest.
    Raises ``ValueError`` naming the parameter for a value out of bounds or not a number."""
    if kind not in DEFAULTS:
        raise ValueError(f"“{kind}” is not a guardrail")
    values = dict(DEFAULTS[kind])
    for name, value in (given or {}).items():
        if name not in values:
            raise ValueError(f"{LABELS[kind]} has no parameter “{name}”")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"{name} must be a number")
        low, high = BOUNDS[name]
        if not low <= value <= high:
            raise ValueError(f"{name} must be between {low:g} and {high:g}")
        values[name] = int(value) if name in INTEGER_PARAMETERS else float(value)
    return values


def _value_at(points: Points, step: int) -> float | None:
    """The last value at or before ``step``."""
    found = None
    for at, value in points:
        if at > step:
            break
        found = value
    return found


def overfitting(observation: Observation, *, evals: float, rise_pct: float) -> Firing | None:
    needed = int(evals)
    valid = list(observation.valid_loss)
    if len(valid) < needed + 1:
        return None
    window = valid[-(needed + 1) :]
    rises = [
        (after - before) / abs(before) * 100 if before else math.inf
        for (_, before), (_, after) in itertools.pairwise(window)
    ]
    if not all(rise > rise_pct for rise in rises):
        return None
    first_step, last_step = window[0][0], window[-1][0]
    train_then = _value_at(observation.train_loss, first_step)
    train_now = _value_at(observation.train_loss, last_step)
    if train_then is None or train_now is None or not train_now < train_then:
        return None
    return Firing(
        last_step,
        f"Validation loss rose at {needed} evaluations in a row (steps {first_step}–{last_step}: "
        f"{window[0][1]:.4g} → {window[-1][1]:.4g}) while training loss fell "
        f"({train_then:.4g} → {train_now:.4g}).",
        {"from_step": first_step, "valid_loss": [v for _, v in window]},
    )


def divergence(observation: Observation, *, spike_factor: float, window: float) -> Firing | None:
    if observation.non_finite_steps:
        step = min(observation.non_finite_steps)
        return Firing(step, f"The loss was not a number at step {step}.", {"non_finite": True})
    size = int(window)
    points = list(observation.train_loss)
    for index in range(size, len(points)):
        before = [v for _, v in points[index - size : index]]
        median = statistics.median(before)
        step, value = points[index]
        if median > 0 and value > spike_factor * median:
            return Firing(
                step,
                f"Training loss spiked to {value:.4g} at step {step}, {value / median:.1f}× the "
                f"median of the {size} values before it ({median:.4g}).",
                {"median": median, "value": value},
            )
    return None


def accuracy_stuck(observation: Observation, *, evals: float, min_gain: float) -> Firing | None:
    needed = int(evals)
    points = list(observation.accuracy)
    if len(points) < needed:
        return None
    window = [v for _, v in points[-needed:]]
    if max(window) - min(window) >= min_gain:
        return None
    step = points[-1][0]
    return Firing(
        step,
        f"Accuracy stayed within {max(window) - min(window):.4g} over the last {needed} "
        f"values (to step {step}), below the {min_gain:g} a rise must reach.",
        {"accuracy": window},
    )


def spend_cap(observation: Observation, *, usd: float) -> Firing | None:
    if observation.spend_usd is None or observation.spend_usd <= usd:
        return None
    return Firing(
        observation.last_step,
        f"The run has cost ${observation.spend_usd:,.2f} so far, above its ${usd:,.2f} cap.",
        {"spend_usd": observation.spend_usd},
    )


def time_limit(observation: Observation, *, minutes: float) -> Firing | None:
    seconds = observation.running_seconds
    if seconds is None or seconds <= minutes * 60:
        return None
    return Firing(
        observation.last_step,
        f"The run has been running for {seconds / 60:,.0f} minutes, past its "
        f"{minutes:,.0f}-minute limit.",
        {"running_seconds": seconds},
    )


RULES = {
    "overfitting": overfitting,
    "divergence": divergence,
    "accuracy_stuck": accuracy_stuck,
    "spend_cap": spend_cap,
    "time_limit": time_limit,
}


def evaluate(kind: str, given: dict[str, Any] | None, observation: Observation) -> Firing | None:
    rule: Any = RULES[kind]
    return rule(observation, **parameters(kind, given))  # type: ignore[no-any-return]
