"""Estimates of OpenAI's "auto" hyperparameters and of the training bill.

Everything here is an estimate: OpenAI does not publish the exact "auto" rules.

* n_epochs follows OpenAI's data-preparation cookbook: 3 epochs, raised (up to 25) so that
  examples × epochs ≥ 100, lowered (down to 1) so that examples × epochs ≤ 25,000. The cookbook
  raises with floor division (100 // n), which can leave a small file just under 100 steps
  (30 examples → 3 epochs); we raise with ceiling division so the ≥ 100 target always holds
  (30 → 4), which is the rule as the product specifies it.
* batch_size: OpenAI's guide says "~0.2% of the number of examples, capped at 256"; we round
  0.2% half up and never go below 1.
* learning_rate_multiplier: the guide says "0.05, 0.1 or 0.2 depending on the final
  batch_size" (larger batches take larger rates) without thresholds. We assume
  batch_size ≤ 8 → 0.05, ≤ 64 → 0.1, larger → 0.2. Those three values come from OpenAI's
  legacy fine-tuning guide; current models report other "auto" values, so show this as a rough
  default only.
* Billed tokens = Σ over examples of min(tokens, training context) × n_epochs — tokens past the
  context are truncated and not trained on — and cost = billed tokens × training price / 1M.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .models import ModelSpec
from .stats import Distribution

TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25
MAX_BATCH_SIZE = 256
_LR_BY_MAX_BATCH: tuple[tuple[int, float], ...] = ((8, 0.05), (64, 0.1))
_LR_LARGE_BATCH = 0.2
_ONE_MILLION = Decimal(1_000_000)


def estimate_n_epochs(n_examples: int) -> int:
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, -(-MIN_TARGET_EXAMPLES // n_examples))
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def estimate_batch_size(n_examples: int) -> int:
    # 0.2% rounded half up, in integers so 250 examples give exactly 1 and 750 give 2.
    return max(1, min(MAX_BATCH_SIZE, (n_examples * 2 + 500) // 1000))


def estimate_learning_rate_multiplier(batch_size: int) -> float:
    for max_batch, rate in _LR_BY_MAX_BATCH:
        if batch_size <= max_batch:
            return rate
    return _LR_LARGE_BATCH


def estimate_hyperparameters(n_examples: int) -> dict[str, Any]:
    batch_size = estimate_batch_size(n_examples)
    return {
        "n_epochs": estimate_n_epochs(n_examples),
        "batch_size": batch_size,
        "learning_rate_multiplier": estimate_learning_rate_multiplier(batch_size),
        "is_estimate": True,
        "label": 'Estimate of OpenAI\'s "auto" setting',
    }


def estimate_training_cost(billed_tokens: int, model: ModelSpec) -> Decimal | None:
    """Training cost in USD, exact (no rounding: the UI decides how to show it)."""
    if model.training_price_per_1m is None:
        return None
    return model.training_price_per_1m * billed_tokens / _ONE_MILLION


def _decimal_or_none(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@dataclass(slots=True)
class TrainingEstimate:
    model_id: str | None
    n_examples: int
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    context_limit: int | None
    n_examples_over_context: int
    billed_tokens_per_epoch: int
    billed_tokens: int
    training_price_per_1m: Decimal | None
    training_cost: Decimal | None

    @classmethod
    def build(cls, totals: Distribution, model: ModelSpec | None) -> TrainingEstimate:
        """From per-example token totals; without a model, nothing is truncated or priced."""
        n_examples = totals.n
        hyper = estimate_hyperparameters(n_examples)
        limit = model.training_context if model else None
        per_epoch = totals.capped_total(limit)
        billed = per_epoch * hyper["n_epochs"]
        return cls(
            model_id=model.id if model else None,
            n_examples=n_examples,
            n_epochs=hyper["n_epochs"],
            batch_size=hyper["batch_size"],
            learning_rate_multiplier=hyper["learning_rate_multiplier"],
            context_limit=limit,
            n_examples_over_context=totals.count_above(limit) if limit is not None else 0,
            billed_tokens_per_epoch=per_epoch,
            billed_tokens=billed,
            training_price_per_1m=model.training_price_per_1m if model else None,
            training_cost=estimate_training_cost(billed, model) if model else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_id": self.model_id,
            "is_estimate": True,
            "n_examples": self.n_examples,
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
            "context_limit": self.context_limit,
            "n_examples_over_context": self.n_examples_over_context,
            "billed_tokens_per_epoch": self.billed_tokens_per_epoch,
            "billed_tokens": self.billed_tokens,
            # Decimals travel as strings: JSON numbers would round them through float.
            "training_price_per_1m": _str_or_none(self.training_price_per_1m),
            "training_cost": _str_or_none(self.training_cost),
            "currency": "USD",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingEstimate:
        return cls(
            model_id=data["model_id"],
            n_examples=data["n_examples"],
            n_epochs=data["n_epochs"],
            batch_size=data["batch_size"],
            learning_rate_multiplier=data["learning_rate_multiplier"],
            context_limit=data["context_limit"],
            n_examples_over_context=data["n_examples_over_context"],
            billed_tokens_per_epoch=data["billed_tokens_per_epoch"],
            billed_tokens=data["billed_tokens"],
            training_price_per_1m=_decimal_or_none(data["training_price_per_1m"]),
            training_cost=_decimal_or_none(data["training_cost"]),
        )


def _str_or_none(value: Decimal | None) -> str | None:
    return None if value is None else str(value)
