"""Resolution of ``"auto"`` hyperparameters the way OpenAI documents or is observed to do it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

AUTO = "auto"

# OpenAI's data-preparation cookbook ("Pricing and default n_epochs estimate").
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

MAX_AUTO_BATCH_SIZE = 256
# (largest batch size, multiplier): OpenAI only says "0.05, 0.1 or 0.2 depending on the final
# batch size, larger rates for larger batches"; the thresholds are ours and match the dashboard's
# estimate in datasets/validation/estimates.py.
_AUTO_LR_BY_MAX_BATCH: tuple[tuple[int, float], ...] = ((8, 0.05), (64, 0.1))
_AUTO_LR_LARGE_BATCH = 0.2
DEFAULT_DPO_BETA = 0.1


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    beta: float | None = None  # DPO only


def auto_n_epochs(n_examples: int) -> int:
    """3 epochs, raised (up to 25) so that examples × epochs ≥ 100, lowered (down to 1) so that
    examples × epochs ≤ 25,000.

    Raising uses ceiling division, so the ≥ 100 target always holds (33 examples → 4 epochs);
    the cookbook's own code floors there (33 → 3), but the product specifies the target.
    """
    n = max(1, n_examples)
    if n * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, -(-MIN_TARGET_EXAMPLES // n))
    if n * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n)
    return TARGET_EPOCHS


def auto_batch_size(n_examples: int) -> int:
    """0.2 % of the examples rounded up, clamped to [1, 256]."""
    # Integer arithmetic: 0.002 * 500 must give exactly 1, not 1.0000000000000002 → 2.
    return max(1, min(MAX_AUTO_BATCH_SIZE, -(-2 * n_examples // 1000)))


def auto_learning_rate_multiplier(batch_size: int) -> float:
    """0.05 up to batch size 8, 0.1 up to 64, 0.2 above."""
    for max_batch, multiplier in _AUTO_LR_BY_MAX_BATCH:
        if batch_size <= max_batch:
            return multiplier
    return _AUTO_LR_LARGE_BATCH


def _is_auto(value: object) -> bool:
    return value is None or value == AUTO


def _as_int(value: object) -> int:
    return int(value)  # type: ignore[call-overload]


def _as_float(value: object) -> float:
    return float(value)  # type: ignore[arg-type]


def resolve_hyperparameters(
    requested: Mapping[str, object], *, n_examples: int, method: str
) -> Hyperparameters:
    """Concrete hyperparameters for a job; each missing, ``None`` or ``"auto"`` value is chosen:

    * ``n_epochs``: 3; if examples × 3 < 100, ⌈100 / examples⌉ capped at 25; if examples × 3 >
      25,000, ⌊25,000 / examples⌋ but at least 1. So 1–4 examples → 25, 10 → 10, 20 → 5,
      34–8,333 → 3, 10,000 → 2, 12,501+ → 1.
    * ``batch_size``: ⌈0.2 % × examples⌉ clamped to [1, 256]: up to 500 examples → 1,
      501–1,000 → 2, 127,501+ → 256.
    * ``learning_rate_multiplier`` (from the final batch size, requested or auto): ≤ 8 → 0.05,
      ≤ 64 → 0.1, larger → 0.2 — larger batches average out gradient noise and tolerate
      larger steps, as OpenAI advises.
    * ``beta`` (DPO only; ``None`` for supervised): 0.1.

    Explicit values are taken as given; range checks belong to the HTTP layer.
    """
    n_epochs = requested.get("n_epochs")
    batch_size = requested.get("batch_size")
    multiplier = requested.get("learning_rate_multiplier")
    resolved_batch = auto_batch_size(n_examples) if _is_auto(batch_size) else _as_int(batch_size)
    beta: float | None = None
    if method == "dpo":
        requested_beta = requested.get("beta")
        beta = DEFAULT_DPO_BETA if _is_auto(requested_beta) else _as_float(requested_beta)
    return Hyperparameters(
        n_epochs=auto_n_epochs(n_examples) if _is_auto(n_epochs) else _as_int(n_epochs),
        batch_size=resolved_batch,
        learning_rate_multiplier=(
            auto_learning_rate_multiplier(resolved_batch)
            if _is_auto(multiplier)
            else _as_float(multiplier)
        ),
        beta=beta,
    )
