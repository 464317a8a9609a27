"""One step's metrics in OpenAI's three shapes: metrics event, checkpoint ``metrics`` and a row
of the results CSV. Values are rounded once, when a ``StepMetrics`` is built, so the three
shapes agree exactly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DECIMALS = 6

RESULTS_CSV_HEADER = (
    "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy,"
    "full_valid_loss,full_valid_mean_token_accuracy"
)


def round_metric(value: float) -> float:
    """The single rounding rule for every reported float."""
    return round(value, DECIMALS)


def _csv_number(value: float | None) -> str:
    if value is None:
        return ""
    # Fixed-point, never scientific notation (repr gives "1e-05"), without trailing zeros.
    text = f"{value:.{DECIMALS}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _message_number(value: float) -> str:
    return f"{value:.2f}"


@dataclass(frozen=True)
class StepMetrics:
    step: int
    total_steps: int
    train_loss: float
    train_mean_token_accuracy: float
    valid_loss: float | None
    valid_mean_token_accuracy: float | None
    full_valid_loss: float | None
    full_valid_mean_token_accuracy: float | None
    # DPO: train_reward_accuracy, train_reward_margin (+ valid_* on validation steps).
    extra: Mapping[str, float] = field(default_factory=dict)

    def _core(self) -> dict[str, float]:
        pairs = {
            "train_loss": self.train_loss,
            "train_mean_token_accuracy": self.train_mean_token_accuracy,
            "valid_loss": self.valid_loss,
            "valid_mean_token_accuracy": self.valid_mean_token_accuracy,
            "full_valid_loss": self.full_valid_loss,
            "full_valid_mean_token_accuracy": self.full_valid_mean_token_accuracy,
        }
        return {key: value for key, value in pairs.items() if value is not None}

    def event_data(self) -> dict[str, Any]:
        """The ``data`` object of OpenAI's ``type: "metrics"`` event (only existing keys)."""
        return {"step": self.step, "total_steps": self.total_steps, **self._core(), **self.extra}

    def event_message(self) -> str:
        parts = [f"training loss={_message_number(self.train_loss)}"]
        if self.valid_loss is not None:
            parts.append(f"validation loss={_message_number(self.valid_loss)}")
        if self.full_valid_loss is not None:
            parts.append(f"full validation loss={_message_number(self.full_valid_loss)}")
        return f"Step {self.step}/{self.total_steps}: " + ", ".join(parts)

    def checkpoint_metrics(self) -> dict[str, float]:
        """OpenAI's checkpoint ``metrics``: the standard optional floats, ``step`` as a float.
        DPO extras are left out: the checkpoint schema has no place for them."""
        return {"step": float(self.step), **self._core()}

    def csv_row(self) -> str:
        cells = [
            str(self.step),
            _csv_number(self.train_loss),
            _csv_number(self.train_mean_token_accuracy),
            _csv_number(self.valid_loss),
            _csv_number(self.valid_mean_token_accuracy),
            _csv_number(self.full_valid_loss),
            _csv_number(self.full_valid_mean_token_accuracy),
        ]
        return ",".join(cells)
