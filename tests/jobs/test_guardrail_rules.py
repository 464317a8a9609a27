"""Guardrail rules (issue 18, deliverable 1) as pure functions on synthetic curves."""

from __future__ import annotations

import math

import pytest

from jobs.guardrail_rules import Observation, evaluate, parameters


def curve(values: list[float], *, every: int = 1, start: int = 1) -> list[tuple[int, float]]:
    return [(start + i * every, v) for i, v in enumerate(values)]


FALLING_TRAIN = curve([2.0 - 0.01 * s for s in range(100)])


def test_overfitting_fires_after_n_rises_while_train_loss_falls() -> None:
    valid = curve([1.5, 1.2, 1.0, 0.95, 1.0, 1.05, 1.1], every=10, start=10)
    fired = evaluate("overfitting", {"evals": 3, "rise_pct": 1.0},
                     Observation(train_loss=FALLING_TRAIN, valid_loss=valid))  # fmt: skip
    assert fired is not None and fired.step == 70
    assert fired.details["from_step"] == 40 and "3 evaluations in a row" in fired.message
    # Two rises are not three; a rise of 0.5 % is not more than 1 %.
    assert evaluate("overfitting", {"evals": 4}, Observation(FALLING_TRAIN, valid)) is None
    small = curve([1.0, 1.004, 1.008, 1.012], every=10, start=10)
    assert evaluate("overfitting", {}, Observation(FALLING_TRAIN, small)) is None


def test_overfitting_needs_the_training_loss_to_fall_meanwhile() -> None:
    valid = curve([1.0, 1.1, 1.2, 1.3], every=10, start=10)
    rising_train = curve([1.0 + 0.01 * s for s in range(100)])
    assert evaluate("overfitting", {}, Observation(rising_train, valid)) is None  # diverging
    assert evaluate("overfitting", {}, Observation((), valid)) is None  # no training loss


def test_divergence_on_a_spike_or_a_non_number() -> None:
    steady = [1.0 + 0.01 * math.sin(s) for s in range(30)]
    assert evaluate("divergence", {}, Observation(train_loss=curve(steady))) is None
    spiked = curve([*steady[:20], 3.5, *steady[21:]])
    fired = evaluate(
        "divergence", {"spike_factor": 3, "window": 10}, Observation(train_loss=spiked)
    )
    assert fired is not None and fired.step == 21 and "3.5× the median" in fired.message
    nan = evaluate(
        "divergence", {}, Observation(train_loss=curve(steady), non_finite_steps=[17, 9])
    )
    assert nan is not None and nan.step == 9 and "not a number" in nan.message


def test_accuracy_stuck_over_the_last_evaluations() -> None:
    stuck = curve([0.5, 0.6, 0.7, 0.701, 0.702, 0.7015, 0.7, 0.702], every=5)
    fired = evaluate("accuracy_stuck", {"evals": 5, "min_gain": 0.005}, Observation(accuracy=stuck))
    assert fired is not None and fired.step == 36
    rising = curve([0.5, 0.6, 0.7, 0.71, 0.72, 0.73, 0.74], every=5)
    assert evaluate("accuracy_stuck", {}, Observation(accuracy=rising)) is None
    assert evaluate("accuracy_stuck", {}, Observation(accuracy=stuck[:4])) is None


def test_spend_cap_and_time_limit() -> None:
    assert evaluate("spend_cap", {"usd": 10}, Observation(spend_usd=9.99)) is None
    over = evaluate("spend_cap", {"usd": 10}, Observation(spend_usd=10.5, last_step=40))
    assert over is not None and over.step == 40 and "$10.50" in over.message
    assert evaluate("spend_cap", {"usd": 10}, Observation(spend_usd=None)) is None
    late = evaluate("time_limit", {"minutes": 60}, Observation(running_seconds=3690))
    assert late is not None and "62 minutes" in late.message
    assert evaluate("time_limit", {"minutes": 60}, Observation(running_seconds=3600)) is None


@pytest.mark.parametrize(
    ("kind", "given", "message"),
    [
        ("overfitting", {"evals": 1}, "evals must be between 2 and 100"),
        ("overfitting", {"patience": 3}, "has no parameter “patience”"),
        ("spend_cap", {"usd": float("nan")}, "usd must be a number"),
        ("sideways", {}, "is not a guardrail"),
    ],
)
def test_parameters_are_checked(kind: str, given: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parameters(kind, given)
    assert parameters("overfitting", {"evals": 4.0}) == {"evals": 4, "rise_pct": 1.0}
