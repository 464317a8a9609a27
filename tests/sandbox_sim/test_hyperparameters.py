from __future__ import annotations

import pytest

from sandbox.simulation import Hyperparameters, resolve_hyperparameters


def auto(n_examples: int, **requested: object) -> Hyperparameters:
    """What the sandbox trains with when a supervised job leaves everything else on "auto"."""
    return resolve_hyperparameters(requested, n_examples=n_examples, method="supervised")


@pytest.mark.parametrize(
    ("n_examples", "epochs"),
    [
        (1, 25),
        (4, 25),  # 100 // 4 = 25, the cap
        (5, 20),
        (7, 14),  # 100 // 7
        (10, 10),
        (20, 5),
        (30, 3),  # 30 × 3 = 90 < 100 → 100 // 30 = 3 (the cookbook's floor)
        (33, 3),
        (34, 3),  # 34 × 3 = 102 ≥ 100
        (100, 3),
        (8_333, 3),  # 24,999 ≤ 25,000
        (8_334, 2),  # 25,002 > 25,000 → ⌊25,000/8,334⌋ = 2
        (10_000, 2),
        (12_500, 2),
        (12_501, 1),
        (1_000_000, 1),
    ],
)
def test_auto_n_epochs(n_examples: int, epochs: int) -> None:
    assert auto(n_examples).n_epochs == epochs


def test_auto_n_epochs_stay_near_the_targets() -> None:
    # The cookbook's floor division can leave small files just under 100 example-passes
    # (33 × 3 = 99), never further than one epoch's worth.
    for n in range(1, 20_000, 7):
        epochs = auto(n).n_epochs
        assert 1 <= epochs <= 25
        assert n * (epochs + 1) > 100 or epochs == 25
        assert n * epochs <= 25_000 or epochs == 1


@pytest.mark.parametrize(
    ("n_examples", "batch_size"),
    [
        (1, 1),
        (499, 1),
        (500, 1),
        (501, 1),  # 1.002 → 1
        (749, 1),  # 1.498 → 1
        (750, 2),  # 1.5 → 2
        (1_000, 2),
        (1_001, 2),  # 2.002 → 2
        (1_249, 2),
        (1_250, 3),  # 2.5 → 3
        (127_500, 255),
        (127_501, 255),  # 255.002 → 255
        (127_749, 255),
        (127_750, 256),
        (200_000, 256),
    ],
)
def test_auto_batch_size_is_two_per_mille_rounded_half_up(n_examples: int, batch_size: int) -> None:
    assert auto(n_examples).batch_size == batch_size


@pytest.mark.parametrize(
    ("batch_size", "multiplier"),
    [(1, 0.05), (8, 0.05), (9, 0.1), (64, 0.1), (65, 0.2), (256, 0.2)],
)
def test_auto_learning_rate_grows_with_batch_size(batch_size: int, multiplier: float) -> None:
    assert auto(1_000, batch_size=batch_size).learning_rate_multiplier == multiplier


@pytest.mark.parametrize(
    "auto",
    [
        {},
        {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"},
        {"n_epochs": None},
    ],
)
def test_missing_auto_and_none_all_mean_auto(auto: dict[str, object]) -> None:
    assert resolve_hyperparameters(auto, n_examples=20, method="supervised") == Hyperparameters(
        n_epochs=5, batch_size=1, learning_rate_multiplier=0.05, beta=None
    )


def test_auto_values_for_large_datasets() -> None:
    hp = resolve_hyperparameters({}, n_examples=200_000, method="supervised")
    assert hp == Hyperparameters(n_epochs=1, batch_size=256, learning_rate_multiplier=0.2)


def test_explicit_values_are_kept_and_numbers_are_normalised() -> None:
    requested = {"n_epochs": 7.0, "batch_size": 3, "learning_rate_multiplier": 2}
    hp = resolve_hyperparameters(requested, n_examples=1_000, method="supervised")
    assert hp == Hyperparameters(n_epochs=7, batch_size=3, learning_rate_multiplier=2.0)
    assert isinstance(hp.n_epochs, int) and isinstance(hp.learning_rate_multiplier, float)


def test_auto_learning_rate_follows_a_requested_batch_size() -> None:
    hp = resolve_hyperparameters({"batch_size": 32}, n_examples=100, method="supervised")
    assert hp.batch_size == 32 and hp.learning_rate_multiplier == 0.1
    assert hp.n_epochs == 3


def test_beta_is_only_resolved_for_dpo() -> None:
    assert resolve_hyperparameters({}, n_examples=50, method="dpo").beta == 0.1
    assert resolve_hyperparameters({"beta": "auto"}, n_examples=50, method="dpo").beta == 0.1
    assert resolve_hyperparameters({"beta": 0.5}, n_examples=50, method="dpo").beta == 0.5
    assert resolve_hyperparameters({"beta": 0.5}, n_examples=50, method="supervised").beta is None
