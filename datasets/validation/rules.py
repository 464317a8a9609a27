"""The fine-tuning rules Tuneboard applies wherever it needs them (pure Python, no Django).

The dataset page's estimate, the launch form's defaults and cost, the sandbox's resolution of
``"auto"`` and the runs list's cost column all call these functions, so a rule changes in one
place only. The runs list also sorts by a cost the database keeps (``jobs_job.cost_usd``, a
trigger of jobs migration 0012); a property test checks it against ``training_cost``.

Why each rule is what it is:

* ``default_n_epochs`` — OpenAI's data-preparation cookbook ("Pricing and default n_epochs
  estimate"), exactly: 3 epochs; ``min(25, 100 // n)`` when 3n < 100; ``max(1, 25000 // n)``
  when 3n > 25,000. The floor division can leave a small file just under 100 example-passes
  (33 examples → 3 epochs, 99 passes); that is the cookbook's estimate of OpenAI's "auto", so
  it is kept (issue 14: rounding up, as the product once did, disagreed with it for 6–9, 11–19,
  21–24 and 26–33 examples). An empty dataset (0 examples) gets the plain target of 3: there
  is nothing to scale.
* ``auto_batch_size`` — OpenAI documents only "~0.2% of the number of examples in the training
  set, capped at 256" (the fine-tunes API reference; today's OpenAPI description adds only the
  range 1..256) and no rounding. "~0.2%" reads as the nearest integer to 0.2%, so we round half
  up (0.5 → 1, 1.5 → 2, 2.5 → 3), then clamp to [1, 256]. Rounding up instead (the sandbox's old
  rule) has no source and makes the batch larger than 0.2% for most sizes (1,100 examples:
  2.2 → 3). Computed in integers as ⌊(2n + 500) / 1000⌋: Python's ``round`` sends ties to even
  (250 examples → round(0.5) = 0, 1,250 → round(2.5) = 2), which is not "half up".
* ``auto_learning_rate_multiplier`` — OpenAI's legacy guide: "0.05, 0.1 or 0.2 depending on the
  final batch_size", larger rates for larger batches (they average out more gradient noise),
  without thresholds. We assume batch size ≤ 8 → 0.05, ≤ 64 → 0.1, larger → 0.2. Current models
  report other "auto" values, so this is a rough default only. It takes the *final* batch size,
  so an explicitly requested batch size moves it too.
* Billed tokens — each example is billed up to the model's training context (tokens past it are
  truncated and not trained on), once per epoch: Σ min(tokens, context) × n_epochs. OpenAI's
  ``trained_tokens`` is "the total number of billable tokens", so the sandbox reports this.
* ``training_cost`` — billed tokens × the training price per 1M tokens / 1M, in USD, as an exact
  ``Decimal`` (no rounding: pages decide how to show money). No price → no cost (``None``), never
  zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

# Epochs (cookbook): the target, and the example-passes window it is moved to satisfy.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25

# Batch size: 2 per mille of the examples, within the API's range.
AUTO_BATCH_PER_MILLE = 2
MIN_BATCH_SIZE = 1
MAX_AUTO_BATCH_SIZE = 256

# Learning-rate multiplier: (largest batch size, multiplier), then the multiplier above them.
LR_MULTIPLIER_BY_MAX_BATCH: tuple[tuple[int, float], ...] = ((8, 0.05), (64, 0.1))
LR_MULTIPLIER_LARGE_BATCH = 0.2

# Prices are quoted per this many tokens.
TOKENS_PER_PRICE_UNIT = 1_000_000


def default_n_epochs(n_examples: int) -> int:
    """What "auto" epochs come to for a training file of ``n_examples`` examples."""
    if n_examples <= 0:
        return TARGET_EPOCHS
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_examples)
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def auto_batch_size(n_examples: int) -> int:
    """0.2 % of the examples rounded half up, clamped to [1, 256]."""
    # n × 2/1000 rounded half up = ⌊(2n + 500) / 1000⌋, exact in integers (see the docstring).
    nearest = (n_examples * AUTO_BATCH_PER_MILLE + 500) // 1000
    return max(MIN_BATCH_SIZE, min(MAX_AUTO_BATCH_SIZE, nearest))


def auto_learning_rate_multiplier(batch_size: int) -> float:
    """0.05 up to batch size 8, 0.1 up to 64, 0.2 above."""
    for max_batch, multiplier in LR_MULTIPLIER_BY_MAX_BATCH:
        if batch_size <= max_batch:
            return multiplier
    return LR_MULTIPLIER_LARGE_BATCH


def billed_tokens_per_epoch(token_counts: Mapping[int, int], *, context: int | None) -> int:
    """Σ over examples of min(tokens, context), from a ``tokens → number of examples`` map.

    Without a context (no model chosen) nothing is truncated."""
    if context is None:
        return sum(tokens * times for tokens, times in token_counts.items())
    return sum(min(tokens, context) * times for tokens, times in token_counts.items())


def billed_tokens(*, tokens_per_epoch: int, n_epochs: int) -> int:
    """Every epoch bills the (context-truncated) tokens of every example again."""
    return tokens_per_epoch * n_epochs


def training_cost(billed_tokens: int, price_per_1m: Decimal | None) -> Decimal | None:
    """Training cost in USD, exact; ``None`` when the model has no training price."""
    if price_per_1m is None:
        return None
    return price_per_1m * billed_tokens / Decimal(TOKENS_PER_PRICE_UNIT)
