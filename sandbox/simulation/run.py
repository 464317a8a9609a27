"""A simulated fine-tuning run: step arithmetic, the validation schedule and per-step metrics.

Validation schedule (only when the job has a validation file):
    ``valid_*`` at every ``max(1, total_steps // 50)``-th step and at every epoch end (so also at
    the last step); ``full_valid_*`` at every epoch end, where checkpoints are made.
"""

from __future__ import annotations

from dataclasses import dataclass

from datasets.validation import rules
from sandbox.simulation.curves import PreferenceCurve, SupervisedCurve
from sandbox.simulation.hyperparameters import DEFAULT_DPO_BETA, Hyperparameters
from sandbox.simulation.metrics import (
    DECIMALS,
    RESULTS_CSV_HEADER,
    StepMetrics,
    round_metric,
)
from sandbox.simulation.model import Curve, Dynamics, Point

VALIDATION_POINTS = 50
_ROUNDING_UNIT = 10.0**-DECIMALS


@dataclass(frozen=True)
class TrainingSpec:
    method: str  # "supervised" | "dpo"
    n_examples: int  # training examples (>= 1)
    n_valid_examples: int  # 0 when there is no validation file
    tokens_per_epoch: int  # sum of the (context-truncated) token counts of the training examples
    seed: int
    model: str  # base model id; recorded for callers, the curves do not depend on it


def _check(spec: TrainingSpec, hp: Hyperparameters) -> None:
    # The HTTP layer validates requests; this only stops nonsense from becoming NaN curves.
    if spec.n_examples < 1 or hp.n_epochs < 1 or hp.batch_size < 1:
        raise ValueError("n_examples, n_epochs and batch_size must be at least 1")
    if hp.learning_rate_multiplier <= 0:
        raise ValueError("learning_rate_multiplier must be positive")


def _build_curve(spec: TrainingSpec, hp: Hyperparameters) -> Curve:
    dynamics = Dynamics.build(
        seed=spec.seed,
        n_examples=spec.n_examples,
        tokens_per_epoch=spec.tokens_per_epoch,
        batch_size=hp.batch_size,
        multiplier=hp.learning_rate_multiplier,
    )
    if spec.method == "dpo":
        beta = hp.beta if hp.beta is not None else DEFAULT_DPO_BETA
        return PreferenceCurve(dynamics, beta=beta, n_valid_examples=spec.n_valid_examples)
    return SupervisedCurve(dynamics, n_valid_examples=spec.n_valid_examples)


def _reward_extras(prefix: str, point: Point) -> dict[str, float]:
    if point.reward_accuracy is None or point.reward_margin is None:
        return {}
    return {
        f"{prefix}_reward_accuracy": round_metric(point.reward_accuracy),
        f"{prefix}_reward_margin": round_metric(point.reward_margin),
    }


class TrainingRun:
    def __init__(self, spec: TrainingSpec, hp: Hyperparameters) -> None:
        _check(spec, hp)
        self.spec = spec
        self.hyperparameters = hp
        self.steps_per_epoch: int = -(-spec.n_examples // hp.batch_size)
        self.total_steps: int = self.steps_per_epoch * hp.n_epochs
        self.validation_interval: int = max(1, self.total_steps // VALIDATION_POINTS)
        self._curve = _build_curve(spec, hp)

    # --- step arithmetic -------------------------------------------------------------

    def epoch_of(self, step: int) -> int:
        """1-based epoch that ``step`` belongs to."""
        return (step - 1) // self.steps_per_epoch + 1

    def epoch_end_steps(self) -> list[int]:
        """Checkpoint steps, one per epoch end; the last is ``total_steps``."""
        return [
            self.steps_per_epoch * epoch for epoch in range(1, self.hyperparameters.n_epochs + 1)
        ]

    def is_epoch_end(self, step: int) -> bool:
        return step % self.steps_per_epoch == 0

    def is_validation_step(self, step: int) -> bool:
        if self.spec.n_valid_examples <= 0:
            return False
        return step % self.validation_interval == 0 or self.is_epoch_end(step)

    def trained_tokens(self) -> int:
        return rules.billed_tokens(
            tokens_per_epoch=self.spec.tokens_per_epoch, n_epochs=self.hyperparameters.n_epochs
        )

    # --- metrics ---------------------------------------------------------------------

    def _check_step(self, step: int, *, lowest: int = 1) -> None:
        if not lowest <= step <= self.total_steps:
            raise ValueError(f"step {step} is outside {lowest}..{self.total_steps}")

    def _train_loss(self, step: int, raw: float) -> float:
        """The rounded training loss, kept distinct from both neighbours.

        Rounding can make two consecutive noisy values equal. Only even steps are adjusted,
        by a rounding unit or two, against their odd neighbours' unadjusted values, so the
        result stays a pure function of the step (O(1), no chain through earlier steps)."""
        value = round_metric(raw)
        if step % 2:
            return value
        neighbours = {round_metric(self._curve.train(s).loss) for s in (step - 1, step + 1)}
        for offset in (0, 1, -1, 2):
            candidate = round_metric(value + offset * _ROUNDING_UNIT)
            if candidate not in neighbours and candidate > 0:
                return candidate
        return value  # unreachable: four distinct candidates, at most two neighbours

    def metrics(self, step: int) -> StepMetrics:
        self._check_step(step)
        train = self._curve.train(step)
        extra = _reward_extras("train", train)
        valid = full = None
        if self.is_validation_step(step):
            valid = self._curve.valid(step)
            extra |= _reward_extras("valid", valid)
            if self.is_epoch_end(step):
                full = self._curve.full_valid(step)
        return StepMetrics(
            step=step,
            total_steps=self.total_steps,
            train_loss=self._train_loss(step, train.loss),
            train_mean_token_accuracy=round_metric(train.accuracy),
            valid_loss=round_metric(valid.loss) if valid else None,
            valid_mean_token_accuracy=round_metric(valid.accuracy) if valid else None,
            full_valid_loss=round_metric(full.loss) if full else None,
            full_valid_mean_token_accuracy=round_metric(full.accuracy) if full else None,
            extra=extra,
        )

    def fidelity(self, step: int) -> float:
        """How faithfully a model at ``step`` reproduces trained replies, in [0, 1]; step 0 is
        the base model (0.0). See ``sandbox.simulation.model`` for the formula."""
        self._check_step(step, lowest=0)
        return self._curve.fidelity(step)

    def results_csv(self, *, upto: int | None = None) -> str:
        """OpenAI's results file (``step_metrics.csv``) for steps 1..upto (default: all)."""
        last = self.total_steps if upto is None else max(0, min(upto, self.total_steps))
        rows = [RESULTS_CSV_HEADER, *(self.metrics(step).csv_row() for step in range(1, last + 1))]
        return "\n".join(rows) + "\n"
