"""The loss model: closed-form curves with seeded step noise, so any step costs O(1).

Symbols (per run): N training examples, B batch size, η learning-rate multiplier, S = ⌈N/B⌉
steps per epoch, s the step, τ = tokens_per_epoch / N the mean tokens per example, and constants
drawn once from the seed (``noise.between``). Nothing depends on n_epochs or on the
order steps are asked in, so runs that differ only in n_epochs report identical metrics for
their common steps (which steps carry validation metrics depends on the total, see ``run``).
The curves themselves are in ``sandbox.simulation.curves``.

Shared dynamics
    λ = η / 0.05, h(λ) = λ^1.5 / (1 + λ^1.5/4)
        learning-rate response: superlinear for small multipliers (tiny updates barely move
        the pretrained weights, so 0.005 underfits), saturating at 4 (beyond η ≈ 0.2 bigger
        steps buy speed no more, only instability).
    r = k·h(λ)·√B·t / (1 + k·h(λ)·√B·t / 0.3),  k ~ U(0.09, 0.12),  t = clamp((τ/400)^0.15, 0.75, 1.35)
        progress per step; longer examples carry more signal per step; the cap keeps even huge
        batches from converging in fewer than ~10 steps.
    P(u) = r·u,  R(u) = e^(−P(u))                       what is left of the learnable gap after
        u updates; step s reports the loss of its batch before its update (u = s − 1), so
        step 1 shows the base model: ≈ L0, or ≈ ln 2 for DPO.
    μ = 0.6·(30 / (30 + N))^0.75 · h(λ) / B^0.25        memorisation rate per epoch
    m(u) = (1 − e^(−(μ·u/S)²)) / (1 + ι)                memorised share; slow onset, then fast;
        small data sets memorise within a few epochs, large ones barely.
    ω = 1.3·(30 / (30 + N))^0.25                        overfitting severity
    ι = max(0, ln(η / (4·B^0.25)))                      instability (0 for η ≤ 4 at batch 1)

Supervised loss (L0 ~ U(1.6, 2.8), floor Lf = L0·U(0.18, 0.28), validation shift δ ~ U(0.03, 0.10))
    F = min(0.8·L0, Lf·(1 + 0.6·ι))                     high rates end on a worse plateau
    train(s) = [F·(1 − 0.85·m) + (L0 − F)·R] · spike(s) · e^(σ·z)
    valid(s) = [Fv + (L0·(1+δ) − Fv)·R^0.9 + ω·Lf·m^1.5] · spike(s) · e^(1.2·σ·z')
        with Fv = min(0.9·L0·(1+δ), F·(1 + δ + 0.6/√N)): the generalisation floor is higher for
        small data sets, and the m^1.5 term is the overfitting that makes validation loss rise
        while training loss keeps falling.
    full_valid(s) = the same trend with noise σ_full = clamp(0.06/√N_valid, 0.002, 0.03)
    accuracy = e^(−a·loss), a ~ U(0.30, 0.36): always in (0, 1), moving opposite to the loss.

Noise and instability
    z ~ N(0, 1) clipped to ±2.5, drawn from (seed, stream, step);
    σ = clamp(0.05·√(400 / (B·τ)), 0.01, 0.1)·(1 + 0.5·ι): bigger batches of longer examples
        average more tokens, so their loss is smoother.
    spike(s) = 1 + Σ_{d=0..3} A(s−d)·0.45^d, where step j spikes with probability
        p = min(0.35, 0.06·ι + 0.02·ι²) and amplitude A(j) = 0.6 + U·(0.8 + 0.8·ι): a jump of at
        least 60 % that decays over the next three steps. Stable runs (ι = 0) never spike.

DPO (β the KL weight; every quantity is a reward margin M between preferred and rejected replies)
    M∞ = β·D·√(0.1/β) = D·√(0.1·β), D ~ U(10, 18): a larger β holds the policy closer to the
        reference (log-ratio shift ∝ 1/√β) but scales rewards by β, so margins grow like √β.
    train margin = M∞·(1 − R + 1.5·m) / (1 + 0.5·ι), spread 0.4 + 0.3·|M|
    valid margin = M∞·(0.8·(1 − R) − 0.5·ω·m^1.5) / (1 + 0.5·ι), spread 0.5 + 0.3·|M| + 0.8·ω·m
    loss = E[softplus(−(M + spread·Z))] (5-point Gauss–Hermite), which is ≈ ln 2 at M = 0;
    reward accuracy = Φ(M / spread); noise perturbs M by σ·(0.3 + |M|)·z and a spike maps
    M → M/spike − 0.5·(spike − 1); token accuracy uses the same e^(−a·loss) proxy.

Fidelity (how faithfully the model reproduces trained replies, for ``sandbox.replies``)
    fidelity(s) = clamp((start − trend(s)) / (start − converged), 0, 1) on the noise-free training
    loss after s updates, spikes included, where start is the base model's loss (L0, or the DPO
    loss at M = 0) and converged the stable run's plateau before memorisation (Lf, or the DPO
    loss at M∞). So it is 0 at the start, ≥ 0.9 once 90 % of the learnable gap is closed,
    nondecreasing for stable runs, and on unstable runs lower at spikes and on the worse plateau.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from sandbox.simulation import noise

LR_REFERENCE = 0.05
TOKENS_REFERENCE = 400.0
SPIKE_DECAY = 0.45
SPIKE_MEMORY = 4  # a spike and its three decaying echoes


@dataclass(frozen=True)
class Point:
    """Metrics of one evaluation (a training batch, a validation batch or the full set)."""

    loss: float
    accuracy: float
    reward_accuracy: float | None = None
    reward_margin: float | None = None


class Curve(Protocol):
    def train(self, step: int) -> Point: ...
    def valid(self, step: int) -> Point: ...
    def full_valid(self, step: int) -> Point: ...
    def fidelity(self, step: int) -> float: ...


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def learning_response(multiplier: float) -> float:
    powered = (multiplier / LR_REFERENCE) ** 1.5
    return powered / (1 + powered / 4)


@dataclass(frozen=True)
class Dynamics:
    """Everything the curves share: progress, memorisation, spikes and step noise."""

    seed: int
    n_examples: int
    steps_per_epoch: int
    progress_rate: float
    memorisation_rate: float
    overfit_weight: float
    instability: float
    noise_scale: float

    @classmethod
    def build(
        cls,
        *,
        seed: int,
        n_examples: int,
        tokens_per_epoch: int,
        batch_size: int,
        multiplier: float,
    ) -> Dynamics:
        response = learning_response(multiplier)
        tokens_per_example = max(1.0, tokens_per_epoch / n_examples)
        token_factor = clamp((tokens_per_example / TOKENS_REFERENCE) ** 0.15, 0.75, 1.35)
        raw_rate = (
            noise.between(seed, "progress", 0.09, 0.12)
            * response
            * math.sqrt(batch_size)
            * token_factor
        )
        small_data = 30 / (30 + n_examples)
        instability = max(0.0, math.log(multiplier / (4 * batch_size**0.25)))
        batch_tokens = batch_size * tokens_per_example
        return cls(
            seed=seed,
            n_examples=n_examples,
            steps_per_epoch=-(-n_examples // batch_size),
            progress_rate=raw_rate / (1 + raw_rate / 0.3),
            memorisation_rate=0.6 * small_data**0.75 * response / batch_size**0.25,
            overfit_weight=1.3 * small_data**0.25,
            instability=instability,
            noise_scale=clamp(0.05 * math.sqrt(TOKENS_REFERENCE / batch_tokens), 0.01, 0.1)
            * (1 + 0.5 * instability),
        )

    def remaining(self, updates: int) -> float:
        return math.exp(-self.progress_rate * updates)

    def memorisation(self, updates: int) -> float:
        x = self.memorisation_rate * updates / self.steps_per_epoch
        return (1 - math.exp(-x * x)) / (1 + self.instability)

    def _spike_amplitude(self, step: int) -> float:
        if step < 1:
            return 0.0
        chance, size, _, _ = noise.uniforms(self.seed, "spike", step)
        iota = self.instability
        if chance >= min(0.35, 0.06 * iota + 0.02 * iota * iota):
            return 0.0
        return 0.6 + size * (0.8 + 0.8 * iota)

    def spike(self, step: int) -> float:
        if self.instability == 0:
            return 1.0
        return 1 + sum(
            self._spike_amplitude(step - d) * SPIKE_DECAY**d for d in range(SPIKE_MEMORY)
        )

    def jitter(self, stream: str, step: int, scale: float = 1.0) -> float:
        return noise.normal(self.seed, stream, step) * self.noise_scale * scale


def full_validation_noise(n_valid_examples: int) -> float:
    # The full set averages more examples than a batch: the larger it is, the steadier.
    return clamp(0.06 / math.sqrt(max(1, n_valid_examples)), 0.002, 0.03)


def fraction_closed(start: float, now: float, converged: float) -> float:
    return clamp((start - now) / (start - converged), 0.0, 1.0)
