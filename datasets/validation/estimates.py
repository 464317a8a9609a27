"""The dataset page's estimate of OpenAI's "auto" hyperparameters and of the training bill.

Everything here is an estimate: OpenAI does not publish the exact "auto" rules. The rules
themselves (and why each is as it is) live in ``rules``, shared with the launch form, the
sandbox and the runs list; this module only packages them for a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from . import rules
from .models import ModelSpec
from .stats import Distribution


def estimate_hyperparameters(n_examples: int) -> dict[str, Any]:
    batch_size = rules.auto_batch_size(n_examples)
    return {
        "n_epochs": rules.default_n_epochs(n_examples),
        "batch_size": batch_size,
        "learning_rate_multiplier": rules.auto_learning_rate_multiplier(batch_size),
        "is_estimate": True,
        "label": 'Estimate of OpenAI\'s "auto" setting',
    }


def estimate_training_cost(billed_tokens: int, model: ModelSpec) -> Decimal | None:
    """Training cost in USD, exact (no rounding: the UI decides how to show it)."""
    return rules.training_cost(billed_tokens, model.training_price_per_1m)


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
        per_epoch = rules.billed_tokens_per_epoch(totals.counts, context=limit)
        billed = rules.billed_tokens(tokens_per_epoch=per_epoch, n_epochs=hyper["n_epochs"])
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
