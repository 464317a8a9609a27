"""Deterministic simulation core of the sandbox's fine-tuning emulator (no Django).

``resolve_hyperparameters`` turns a request's ``"auto"`` values into numbers, and
``TrainingRun`` produces every step's metrics, checkpoints steps, the results CSV and the
``fidelity`` that ``sandbox.replies`` uses for fine-tuned models. The loss model and its
formulas are documented in ``sandbox.simulation.model``.
"""

from sandbox.simulation.hyperparameters import (
    AUTO,
    DEFAULT_DPO_BETA,
    Hyperparameters,
    resolve_hyperparameters,
)
from sandbox.simulation.metrics import DECIMALS, RESULTS_CSV_HEADER, StepMetrics, round_metric
from sandbox.simulation.run import VALIDATION_POINTS, TrainingRun, TrainingSpec

__all__ = [
    "AUTO",
    "DECIMALS",
    "DEFAULT_DPO_BETA",
    "RESULTS_CSV_HEADER",
    "VALIDATION_POINTS",
    "Hyperparameters",
    "StepMetrics",
    "TrainingRun",
    "TrainingSpec",
    "resolve_hyperparameters",
    "round_metric",
]
