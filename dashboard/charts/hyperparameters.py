"""Hyperparameters as the charts and tables name them, and which are worth a scatter plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dashboard.charts.series import finite_number

HYPERPARAMETER_LABELS: dict[str, str] = {
    "n_epochs": "Epochs",
    "batch_size": "Batch size",
    "learning_rate_multiplier": "Learning-rate multiplier",
    "learning_rate": "Learning rate (absolute)",
    "beta": "β (DPO)",
    "dpo_beta": "β (DPO)",
    "lr_scheduler": "LR schedule",
    "min_lr_ratio": "Final LR ratio",
    "num_cycles": "Cosine cycles",
    "warmup_ratio": "Warm-up (fraction of steps)",
    "weight_decay": "Weight decay",
    "max_grad_norm": "Max gradient norm",
    "n_checkpoints": "Checkpoints",
    "n_evals": "Evaluations",
    "training_type": "Training (LoRA or full)",
    "lora_r": "LoRA rank",
    "lora_alpha": "LoRA α",
    "lora_dropout": "LoRA dropout",
    "lora_trainable_modules": "LoRA modules",
    "train_on_inputs": "Train on inputs",
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
    "learning_rate",
    "beta",
    "compute_multiplier",
    "lora_r",
    "warmup_ratio",
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
