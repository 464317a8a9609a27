"""Hyperparameters as the charts and tables name them, and which are worth a scatter plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dashboard.charts.series import finite_number

HYPERPARAMETER_LABELS: dict[str, str] = {
    "n_epochs": "Epochs",
    "batch_size": "Batch size",
    "learning_rate_multiplier": "Learning-rate multiplier",
    "beta": "β (DPO)",
    "compute_multiplier": "Compute multiplier",
    "base_model": "Base model",
    "method": "Method",
    "training_dataset": "Training dataset",
    "seed": "Seed",
}
# Training knobs whose value, as a number, can explain a difference in validation loss. A seed
# is a label, not a quantity, and evaluation settings (eval_interval…) do not change training.
SCATTER_PARAMETERS: tuple[str, ...] = (
    "n_epochs",
    "batch_size",
    "learning_rate_multiplier",
    "beta",
    "compute_multiplier",
)


def hyperparameter_label(key: str) -> str:
    return HYPERPARAMETER_LABELS.get(key, key)


def plotted_parameters(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The meaningful hyperparameters with at least two different numeric values among the
    rows (``export.comparison_rows`` shape), in ``SCATTER_PARAMETERS`` order."""
    found = []
    for key in SCATTER_PARAMETERS:
        numbers = {
            number
            for row in rows
            if (number := finite_number((row.get("hyperparameters") or {}).get(key))) is not None
        }
        if len(numbers) >= 2:
            found.append(key)
    return found
