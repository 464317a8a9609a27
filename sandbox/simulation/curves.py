"""Supervised and DPO curves on top of the shared dynamics; the formulas are documented in
``sandbox.simulation.model``."""

from __future__ import annotations

import math

from sandbox.simulation import noise
from sandbox.simulation.model import Dynamics, Point, fraction_closed, full_validation_noise

# Probabilists' Gauss–Hermite nodes and weights (weights sum to 1): E[f(Z)] for Z ~ N(0, 1).
_GH_NODES = (0.0, 1.3556261799742659, -1.3556261799742659, 2.8569700138728056, -2.8569700138728056)
_GH_WEIGHTS = (
    8 / 15,
    0.2220759220056126,
    0.2220759220056126,
    0.0112574113277207,
    0.0112574113277207,
)


class SupervisedCurve:
    def __init__(self, dynamics: Dynamics, *, n_valid_examples: int) -> None:
        seed = dynamics.seed
        self.d = dynamics
        self.initial = noise.between(seed, "initial_loss", 1.6, 2.8)
        self.nominal_floor = self.initial * noise.between(seed, "floor", 0.18, 0.28)
        self.accuracy_slope = noise.between(seed, "accuracy_slope", 0.30, 0.36)
        shift = noise.between(seed, "valid_shift", 0.03, 0.10)
        self.floor = min(0.8 * self.initial, self.nominal_floor * (1 + 0.6 * dynamics.instability))
        self.valid_start = self.initial * (1 + shift)
        self.valid_floor = min(
            0.9 * self.valid_start,
            self.floor * (1 + shift + 0.6 / math.sqrt(dynamics.n_examples)),
        )
        self.full_noise = full_validation_noise(n_valid_examples)

    def _train_trend(self, updates: int) -> float:
        d = self.d
        memorised = self.floor * (1 - 0.85 * d.memorisation(updates))
        return memorised + (self.initial - self.floor) * d.remaining(updates)

    def _valid_trend(self, updates: int) -> float:
        d = self.d
        gap = self.valid_start - self.valid_floor
        generalised = self.valid_floor + gap * d.remaining(updates) ** 0.9
        overfit = d.overfit_weight * self.nominal_floor * d.memorisation(updates) ** 1.5
        return generalised + overfit

    def _point(self, loss: float) -> Point:
        return Point(loss=loss, accuracy=math.exp(-self.accuracy_slope * loss))

    # A step's loss is measured on its batch before its update: step 1 shows the base model.

    def train(self, step: int) -> Point:
        d = self.d
        shake = d.spike(step) * math.exp(d.jitter("train", step))
        return self._point(self._train_trend(step - 1) * shake)

    def valid(self, step: int) -> Point:
        d = self.d
        shake = d.spike(step) * math.exp(d.jitter("valid", step, 1.2))
        return self._point(self._valid_trend(step - 1) * shake)

    def full_valid(self, step: int) -> Point:
        z = noise.normal(self.d.seed, "full_valid", step)
        shake = self.d.spike(step) * math.exp(self.full_noise * z)
        return self._point(self._valid_trend(step - 1) * shake)

    def fidelity(self, step: int) -> float:
        # The model saved at step s has taken s updates.
        now = self._train_trend(step) * self.d.spike(step)
        return fraction_closed(self.initial, now, self.nominal_floor)


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def preference_loss(margin: float, spread: float) -> float:
    """Mean DPO loss −log σ(M + spread·Z) over pairs whose margins are N(margin, spread²)."""
    terms = zip(_GH_WEIGHTS, _GH_NODES, strict=True)
    return sum(weight * _softplus(-(margin + spread * node)) for weight, node in terms)


def _normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


class PreferenceCurve:
    def __init__(self, dynamics: Dynamics, *, beta: float, n_valid_examples: int) -> None:
        seed = dynamics.seed
        self.d = dynamics
        self.margin_scale = noise.between(seed, "dpo_margin", 10.0, 18.0) * math.sqrt(0.1 * beta)
        self.accuracy_slope = noise.between(seed, "accuracy_slope", 0.30, 0.36)
        self.damping = 1 / (1 + 0.5 * dynamics.instability)
        self.full_noise = full_validation_noise(n_valid_examples)
        self.start = preference_loss(0.0, self._train_spread(0.0))
        self.converged = preference_loss(self.margin_scale, self._train_spread(self.margin_scale))

    @staticmethod
    def _train_spread(margin: float) -> float:
        return 0.4 + 0.3 * abs(margin)

    def _valid_spread(self, margin: float, updates: int) -> float:
        overfit = 0.8 * self.d.overfit_weight * self.d.memorisation(updates)
        return 0.5 + 0.3 * abs(margin) + overfit

    def _train_margin(self, updates: int) -> float:
        d = self.d
        learned = 1 - d.remaining(updates) + 1.5 * d.memorisation(updates)
        return self.margin_scale * learned * self.damping

    def _valid_margin(self, updates: int) -> float:
        d = self.d
        learned = 0.8 * (1 - d.remaining(updates))
        overfit = 0.5 * d.overfit_weight * d.memorisation(updates) ** 1.5
        return self.margin_scale * (learned - overfit) * self.damping

    def _disturbed(self, margin: float, step: int, shift: float) -> float:
        # Noise scales with the margin, plus a floor so that the first steps differ; a spike
        # knocks the margin down, past zero for large spikes.
        noisy = margin + shift * (0.3 + abs(margin))
        spike = self.d.spike(step)
        return noisy / spike - 0.5 * (spike - 1)

    def _point(self, margin: float, spread: float) -> Point:
        loss = preference_loss(margin, spread)
        return Point(
            loss=loss,
            accuracy=math.exp(-self.accuracy_slope * loss),
            reward_accuracy=_normal_cdf(margin / spread),
            reward_margin=margin,
        )

    def train(self, step: int) -> Point:
        shift = self.d.jitter("train", step)
        margin = self._disturbed(self._train_margin(step - 1), step, shift)
        return self._point(margin, self._train_spread(margin))

    def valid(self, step: int) -> Point:
        shift = self.d.jitter("valid", step, 1.2)
        margin = self._disturbed(self._valid_margin(step - 1), step, shift)
        return self._point(margin, self._valid_spread(margin, step - 1))

    def full_valid(self, step: int) -> Point:
        shift = self.full_noise * noise.normal(self.d.seed, "full_valid", step)
        margin = self._disturbed(self._valid_margin(step - 1), step, shift)
        return self._point(margin, self._valid_spread(margin, step - 1))

    def fidelity(self, step: int) -> float:
        margin = self._disturbed(self._train_margin(step), step, 0.0)
        now = preference_loss(margin, self._train_spread(margin))
        return fraction_closed(self.start, now, self.converged)
