"""Resolution of ``"auto"`` hyperparameters the way OpenAI documents or is observed to do it.

The rules are Tuneboard's own (``datasets.validation.rules``), so a job launched from the
dashboard trains with exactly the defaults its dataset page and launch form showed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from datasets.validation import rules

AUTO = "auto"
DEFAULT_DPO_BETA = 0.1


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    beta: float | None = None  # DPO only


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

    * ``n_epochs``: ``rules.default_n_epochs`` — 3; if examples × 3 < 100, ⌊100 / examples⌋
      capped at 25; if examples × 3 > 25,000, ⌊25,000 / examples⌋ but at least 1. So 1–4
      examples → 25, 10 → 10, 12 → 8, 20 → 5, 26–8,333 → 3, 10,000 → 2, 12,501+ → 1.
    * ``batch_size``: ``rules.auto_batch_size`` — 0.2 % × examples rounded half up, clamped to
      [1, 256]: up to 749 examples → 1, 750–1,249 → 2, 127,750+ → 256.
    * ``learning_rate_multiplier``: ``rules.auto_learning_rate_multiplier`` of the final batch
      size, requested or auto: ≤ 8 → 0.05, ≤ 64 → 0.1, larger → 0.2.
    * ``beta`` (DPO only; ``None`` for supervised): 0.1.

    Explicit values are taken as given; range checks belong to the HTTP layer.
    """
    n_epochs = requested.get("n_epochs")
    batch_size = requested.get("batch_size")
    multiplier = requested.get("learning_rate_multiplier")
    resolved_batch = (
        rules.auto_batch_size(n_examples) if _is_auto(batch_size) else _as_int(batch_size)
    )
    beta: float | None = None
    if method == "dpo":
        requested_beta = requested.get("beta")
        beta = DEFAULT_DPO_BETA if _is_auto(requested_beta) else _as_float(requested_beta)
    return Hyperparameters(
        n_epochs=rules.default_n_epochs(n_examples) if _is_auto(n_epochs) else _as_int(n_epochs),
        batch_size=resolved_batch,
        learning_rate_multiplier=(
            rules.auto_learning_rate_multiplier(resolved_batch)
            if _is_auto(multiplier)
            else _as_float(multiplier)
        ),
        beta=beta,
    )
