from __future__ import annotations

import math

import pytest

from sandbox.simulation import RESULTS_CSV_HEADER

from .helpers import SEEDS, all_metrics, full_valid_by_epoch, make_run, tail, train_losses

LN2 = math.log(2)
TRAIN_EXTRAS = {"train_reward_accuracy", "train_reward_margin"}
VALID_EXTRAS = {"valid_reward_accuracy", "valid_reward_margin"}


@pytest.mark.parametrize("seed", SEEDS)
def test_dpo_starts_at_ln2_and_falls(seed: int) -> None:
    metrics = all_metrics(make_run(100, 3, method="dpo", beta=0.1, seed=seed))
    first = metrics[0]
    assert abs(first.train_loss - LN2) < 0.03
    assert abs(first.extra["train_reward_accuracy"] - 0.5) < 0.1
    assert abs(first.extra["train_reward_margin"]) < 0.1
    assert tail([m.train_loss for m in metrics]) < 0.5 * LN2
    assert tail([m.extra["train_reward_accuracy"] for m in metrics]) > 0.9
    assert tail([m.extra["train_reward_margin"] for m in metrics]) > 1.0
    for m in metrics:
        assert 0 <= m.extra["train_reward_accuracy"] <= 1


def test_dpo_extra_keys_follow_the_validation_schedule() -> None:
    run = make_run(100, 3, method="dpo", beta=0.1, n_valid=10)
    for m in all_metrics(run):
        data = m.event_data()
        assert set(data) >= TRAIN_EXTRAS
        assert (set(data) >= VALID_EXTRAS) == (m.valid_loss is not None)
        assert not (TRAIN_EXTRAS | VALID_EXTRAS) & set(m.checkpoint_metrics())
    assert run.results_csv().splitlines()[0] == RESULTS_CSV_HEADER


def test_dpo_without_validation_has_only_training_extras() -> None:
    for m in all_metrics(make_run(40, 3, method="dpo", beta=0.1, n_valid=0)):
        assert set(m.extra) == TRAIN_EXTRAS


@pytest.mark.parametrize("seed", SEEDS)
def test_beta_scales_the_reward_margin(seed: int) -> None:
    def final_margin(beta: float) -> float:
        metrics = all_metrics(make_run(100, 3, method="dpo", beta=beta, seed=seed))
        return tail([m.extra["train_reward_margin"] for m in metrics])

    assert final_margin(0.5) > 1.5 * final_margin(0.1)


def test_missing_beta_means_the_default() -> None:
    explicit = train_losses(make_run(50, 2, method="dpo", beta=0.1))
    assert train_losses(make_run(50, 2, method="dpo", beta=None)) == explicit


@pytest.mark.parametrize("seed", SEEDS)
def test_dpo_overfits_small_preference_sets(seed: int) -> None:
    full = full_valid_by_epoch(make_run(30, 12, method="dpo", beta=0.1, seed=seed))
    best = min(range(len(full)), key=full.__getitem__)
    assert best + 1 <= 3
    assert full[-1] > 1.3 * full[best]
