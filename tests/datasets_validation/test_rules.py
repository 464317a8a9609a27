"""The one module of fine-tuning rules: "auto" epochs, batch size and learning-rate multiplier,
billed tokens and training cost — and every user of it agreeing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from datasets.validation import estimate_hyperparameters, rules
from sandbox.simulation import resolve_hyperparameters


@pytest.mark.parametrize(
    ("n", "epochs", "batch", "rate"),
    [
        (0, 3, 1, 0.05),  # nothing to scale: the plain target, the smallest batch
        # 1 × 3 < 100 → 100 // 1 = 100, capped at 25; 0.002 → 0 → at least 1.
        (1, 25, 1, 0.05),
        (2, 25, 1, 0.05),  # 100 // 2 = 50 → 25
        (33, 3, 1, 0.05),  # 33 × 3 = 99 < 100 → 100 // 33 = 3 (the cookbook's floor)
        (34, 3, 1, 0.05),  # 34 × 3 = 102 ≥ 100
        (99, 3, 1, 0.05),
        (100, 3, 1, 0.05),
        (250, 3, 1, 0.05),  # 0.5 rounds half up → 1
        (251, 3, 1, 0.05),  # 0.502 → 1
        (749, 3, 1, 0.05),  # 1.498 → 1
        (750, 3, 2, 0.05),  # 1.5 → 2
        (1_100, 3, 2, 0.05),  # 2.2 → 2 (rounding up would say 3)
        (4_000, 3, 8, 0.05),  # 8.0 → 8, still ≤ 8 → 0.05
        # 8,334 × 3 = 25,002 > 25,000 → ⌊25,000 / 8,334⌋ = 2; 16.668 → 17 → 0.1.
        (8_334, 2, 17, 0.1),
        (32_000, 1, 64, 0.1),  # ⌊25,000 / 32,000⌋ = 0 → at least 1; 64.0 → 64, ≤ 64
        (128_000, 1, 256, 0.2),  # 256.0 → 256
        (200_000, 1, 256, 0.2),  # 400 → capped at 256
    ],
)
def test_auto_hyperparameters(n: int, epochs: int, batch: int, rate: float) -> None:
    assert rules.default_n_epochs(n) == epochs
    assert rules.auto_batch_size(n) == batch
    assert rules.auto_learning_rate_multiplier(batch) == rate


# Issue 14.2: the cookbook's formula exactly, ``min(25, 100 // n)`` while 3n < 100; the product
# used to round 100 / n up and disagreed for 6–9, 11–19, 21–24 and 26–33 examples.
COOKBOOK_EPOCHS = {
    1: 25, 2: 25, 3: 25, 4: 25, 5: 20, 6: 16, 7: 14, 8: 12, 9: 11, 10: 10,
    11: 9, 12: 8, 13: 7, 14: 7, 15: 6, 16: 6, 17: 5, 18: 5, 19: 5, 20: 5,
    21: 4, 22: 4, 23: 4, 24: 4, 25: 4, 26: 3, 27: 3, 28: 3, 29: 3, 30: 3,
    31: 3, 32: 3, 33: 3, 34: 3, 35: 3, 100: 3,
    8_333: 3,  # 3n = 24,999: not above 25,000
    8_334: 2,  # 3n = 25,002 > 25,000 → max(1, 25,000 // 8,334) = 2
    12_500: 2, 12_501: 1, 25_000: 1, 25_001: 1, 1_000_000: 1,
}  # fmt: skip


def test_default_epochs_follow_the_cookbook_formula() -> None:
    assert {n: rules.default_n_epochs(n) for n in COOKBOOK_EPOCHS} == COOKBOOK_EPOCHS
    for n in range(1, 30_000):
        if 3 * n < 100:
            expected = min(25, 100 // n)
        elif 3 * n > 25_000:
            expected = max(1, 25_000 // n)
        else:
            expected = 3
        assert rules.default_n_epochs(n) == expected, n


# Sizes → (epochs, batch size, learning-rate multiplier): what the dataset page estimates and
# what the sandbox trains with when everything is "auto".
AUTO_TABLE = {
    1: (25, 1, 0.05), 6: (16, 1, 0.05), 12: (8, 1, 0.05), 33: (3, 1, 0.05),
    749: (3, 1, 0.05), 750: (3, 2, 0.05), 1_250: (3, 3, 0.05), 4_249: (3, 8, 0.05),
    4_250: (3, 9, 0.1), 8_334: (2, 17, 0.1), 32_249: (1, 64, 0.1), 32_250: (1, 65, 0.2),
    127_749: (1, 255, 0.2), 127_750: (1, 256, 0.2), 1_000_000: (1, 256, 0.2),
}  # fmt: skip


@pytest.mark.parametrize("n", sorted(AUTO_TABLE))
def test_dataset_page_and_sandbox_use_the_same_pinned_rule(n: int) -> None:
    page = estimate_hyperparameters(n)
    sandbox = resolve_hyperparameters({}, n_examples=n, method="supervised")
    assert (page["n_epochs"], page["batch_size"], page["learning_rate_multiplier"]) == AUTO_TABLE[n]
    assert (sandbox.n_epochs, sandbox.batch_size, sandbox.learning_rate_multiplier) == AUTO_TABLE[n]


@pytest.mark.parametrize(
    ("batch", "rate"), [(1, 0.05), (8, 0.05), (9, 0.1), (64, 0.1), (65, 0.2), (256, 0.2)]
)
def test_learning_rate_multiplier_thresholds(batch: int, rate: float) -> None:
    assert rules.auto_learning_rate_multiplier(batch) == rate


def test_batch_size_is_the_nearest_integer_to_two_per_mille() -> None:
    # In integers, not floats: batch − ½ ≤ n / 500 < batch + ½ (ties go up), below the cap.
    for n in range(1, 128_250):
        batch = rules.auto_batch_size(n)
        if batch == 1:
            assert n < 750, n
        else:
            assert 500 * batch - 250 <= n < 500 * batch + 250, n
    assert rules.auto_batch_size(128_250) == rules.auto_batch_size(10**9) == 256


def test_the_dataset_page_and_the_sandbox_agree_for_every_size() -> None:
    mismatches = []
    for n in range(1, 200_001):
        page = estimate_hyperparameters(n)
        sandbox = resolve_hyperparameters({}, n_examples=n, method="supervised")
        if (page["n_epochs"], page["batch_size"], page["learning_rate_multiplier"]) != (
            sandbox.n_epochs,
            sandbox.batch_size,
            sandbox.learning_rate_multiplier,
        ):
            mismatches.append(n)
    assert mismatches == []


def test_billed_tokens_truncate_each_example_at_the_context() -> None:
    counts = {100: 1, 5_000: 1, 70_000: 2}  # tokens → examples
    per_epoch = rules.billed_tokens_per_epoch(counts, context=65_536)
    assert per_epoch == 100 + 5_000 + 2 * 65_536
    assert rules.billed_tokens_per_epoch(counts, context=None) == 145_100
    assert rules.billed_tokens_per_epoch({}, context=65_536) == 0
    assert rules.billed_tokens(tokens_per_epoch=per_epoch, n_epochs=3) == 3 * per_epoch


def test_training_cost_is_exact_and_unknown_without_a_price() -> None:
    assert rules.training_cost(1_234_567, Decimal(3)) == Decimal("3.703701")
    assert rules.training_cost(2_000_000, Decimal(25)) == Decimal(50)
    assert rules.training_cost(1, Decimal("0.0001")) == Decimal("1E-10")
    assert rules.training_cost(10**12, Decimal("99999999.9999")) == Decimal("99999999999900")
    assert rules.training_cost(0, Decimal("1.5")) == 0
    assert rules.training_cost(10, None) is None
