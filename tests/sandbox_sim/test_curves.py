"""The loss curves behave like real fine-tuning runs; every claim is checked on five seeds."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest

from .helpers import (
    SEEDS,
    all_metrics,
    centred_average,
    full_valid_by_epoch,
    head,
    late_fall_share,
    make_run,
    overfit_onset,
    spikes,
    tail,
    train_losses,
)


@pytest.mark.parametrize("seed", SEEDS)
def test_more_epochs_lower_the_final_training_loss(seed: int) -> None:
    one, three, eight = (tail(train_losses(make_run(100, e, seed=seed))) for e in (1, 3, 8))
    assert three < 0.9 * one
    assert eight < 0.5 * three


@pytest.mark.parametrize("seed", SEEDS)
def test_initial_loss_is_seeded_between_one_and_a_half_and_three(seed: int) -> None:
    assert 1.5 <= head(train_losses(make_run(100, 1, seed=seed))) <= 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_small_dataset_with_many_epochs_overfits(seed: int) -> None:
    run = make_run(30, 12, seed=seed)
    full = full_valid_by_epoch(run)
    best = min(range(len(full)), key=full.__getitem__)
    # Full validation loss bottoms out early, rises for three epochs in a row, never comes
    # back near its minimum and ends at least 30 % above it.
    assert best + 1 <= 3
    assert full[best] < full[best + 1] < full[best + 2] < full[best + 3]
    assert min(full[best + 1 :]) > 1.05 * full[best]
    assert full[-1] > 1.3 * full[best]
    # The mini-batch validation loss tells the same story, once smoothed.
    valid = [(m.step, m.valid_loss) for m in all_metrics(run) if m.valid_loss is not None]
    smooth_valid = centred_average([v for _, v in valid], 5)
    low = min(range(len(smooth_valid)), key=smooth_valid.__getitem__)
    assert valid[low][0] <= run.total_steps // 4
    assert smooth_valid[-1] > 1.3 * smooth_valid[low]
    # Meanwhile training loss keeps falling, far below where it was at the validation minimum.
    smooth_train = centred_average(train_losses(run))
    at_best = smooth_train[run.epoch_end_steps()[best] - 1]
    assert smooth_train[-1] < 0.3 * at_best


@pytest.mark.parametrize("seed", SEEDS)
def test_a_tiny_learning_rate_underfits(seed: int) -> None:
    losses = train_losses(make_run(50, 3, lr=0.005, seed=seed))
    trained = train_losses(make_run(50, 3, lr=0.05, seed=seed))
    assert tail(losses) > 0.6 * head(losses)  # still close to the initial loss
    assert tail(losses) > 2.5 * tail(trained)
    assert late_fall_share(losses) > 0.12  # and still falling steeply at the end
    assert late_fall_share(trained) < 0.06  # where a well-trained run has flattened


@pytest.mark.parametrize("seed", SEEDS)
def test_a_single_epoch_on_a_small_dataset_underfits(seed: int) -> None:
    one = train_losses(make_run(20, 1, seed=seed))
    five = train_losses(make_run(20, 5, seed=seed))
    assert tail(one, 3) > 0.4 * head(one, 3)
    assert tail(one, 3) > 5 * tail(five)
    assert late_fall_share(one, window=3) > 0.12


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lr", [10, 20, 50])
def test_very_high_learning_rates_spike(seed: int, lr: float) -> None:
    assert spikes(train_losses(make_run(100, 3, lr=lr, seed=seed))) >= 10


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("lr", [0.05, 0.1, 0.5, 1, 2])
def test_stable_learning_rates_do_not_spike(seed: int, lr: float) -> None:
    assert spikes(train_losses(make_run(100, 3, lr=lr, seed=seed))) == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_larger_datasets_overfit_later_and_less(seed: int) -> None:
    small = full_valid_by_epoch(make_run(30, 12, seed=seed))
    large = full_valid_by_epoch(make_run(300, 12, seed=seed))
    small_onset, large_onset = overfit_onset(small), overfit_onset(large)
    assert small_onset is not None and small_onset <= 3
    assert large_onset is None or large_onset >= small_onset + 2
    assert large[-1] / min(large) < small[-1] / min(small) - 0.15


def test_losses_are_positive_finite_and_accuracy_mirrors_them() -> None:
    runs = [
        make_run(100, 3, n_valid=20),
        make_run(30, 12, n_valid=5),
        make_run(100, 3, lr=50),
        make_run(50, 4, method="dpo", beta=0.1, n_valid=10),
    ]
    for run in runs:
        pairs: dict[str, list[tuple[float, float]]] = {"train": [], "valid": [], "full_valid": []}
        for m in all_metrics(run):
            pairs["train"].append((m.train_loss, m.train_mean_token_accuracy))
            if m.valid_loss is not None and m.valid_mean_token_accuracy is not None:
                pairs["valid"].append((m.valid_loss, m.valid_mean_token_accuracy))
            if m.full_valid_loss is not None and m.full_valid_mean_token_accuracy is not None:
                pairs["full_valid"].append((m.full_valid_loss, m.full_valid_mean_token_accuracy))
        for points in pairs.values():
            for loss, accuracy in points:
                assert math.isfinite(loss) and loss > 0
                assert 0 <= accuracy <= 1
            # Token accuracy is a decreasing function of the loss: sorted by loss, it only falls.
            by_loss = sorted(points)
            assert all(a[1] >= b[1] for a, b in itertools.pairwise(by_loss))


@pytest.mark.parametrize("seed", SEEDS)
def test_noise_is_small_but_present_on_stable_runs(seed: int) -> None:
    losses = train_losses(make_run(100, 3, seed=seed))
    trend = centred_average(losses)
    residuals = [(x - t) / t for x, t in zip(losses, trend, strict=True)]
    spread = math.sqrt(sum(r * r for r in residuals) / len(residuals))
    assert 0.005 < spread < 0.08
    assert max(abs(r) for r in residuals) < 0.3


@pytest.mark.parametrize(
    "run_kwargs",
    [
        {"n_examples": 2_000, "n_epochs": 2, "n_valid": 0},  # 4,000 steps
        {"n_examples": 10, "n_epochs": 25},  # memorised: tiny losses, where rounding collides most
        {"n_examples": 100_000, "n_epochs": 1, "batch_size": 256, "lr": 0.2},  # smoothest noise
        {"n_examples": 30, "n_epochs": 10, "method": "dpo", "beta": 0.5},
    ],
    ids=["long", "memorised", "large-batch", "dpo"],
)
def test_no_two_consecutive_training_losses_are_equal(run_kwargs: dict[str, Any]) -> None:
    losses = train_losses(make_run(**run_kwargs))
    assert all(a != b for a, b in itertools.pairwise(losses))
