from __future__ import annotations

import pytest

from .helpers import all_metrics, make_run


def test_steps_per_epoch_and_total_steps() -> None:
    run = make_run(100, 3, batch_size=1)
    assert (run.steps_per_epoch, run.total_steps) == (100, 300)
    uneven = make_run(101, 2, batch_size=4)
    assert (uneven.steps_per_epoch, uneven.total_steps) == (26, 52)  # ⌈101/4⌉ = 26
    assert make_run(3, 5, batch_size=256).total_steps == 5  # a batch larger than the file


def test_checkpoints_are_at_epoch_ends() -> None:
    run = make_run(100, 3, batch_size=1)
    assert run.epoch_end_steps() == [100, 200, 300]
    assert make_run(101, 2, batch_size=4).epoch_end_steps() == [26, 52]


@pytest.mark.parametrize(
    ("step", "epoch"), [(1, 1), (100, 1), (101, 2), (200, 2), (201, 3), (300, 3)]
)
def test_epoch_of(step: int, epoch: int) -> None:
    assert make_run(100, 3).epoch_of(step) == epoch


def test_trained_tokens_count_every_epoch() -> None:
    run = make_run(100, 3, tokens_per_example=250)
    assert run.trained_tokens() == 100 * 250 * 3


@pytest.mark.parametrize("step", [0, -1, 301])
def test_steps_outside_the_run_are_rejected(step: int) -> None:
    with pytest.raises(ValueError, match="outside"):
        make_run(100, 3).metrics(step)


def test_validation_schedule() -> None:
    run = make_run(100, 3, n_valid=20)  # 300 steps → every 300 // 50 = 6th step
    assert run.validation_interval == 6
    metrics = all_metrics(run)
    valid_steps = [m.step for m in metrics if m.valid_loss is not None]
    full_steps = [m.step for m in metrics if m.full_valid_loss is not None]
    assert valid_steps == sorted({*range(6, 301, 6), 100, 200, 300})
    assert full_steps == [100, 200, 300]
    for m in metrics:
        assert (m.valid_loss is None) == (m.valid_mean_token_accuracy is None)
        assert (m.full_valid_loss is None) == (m.full_valid_mean_token_accuracy is None)


def test_short_runs_validate_every_step() -> None:
    run = make_run(10, 2, n_valid=5)
    assert all(m.valid_loss is not None for m in all_metrics(run))


def test_no_validation_metrics_without_a_validation_file() -> None:
    for m in all_metrics(make_run(50, 3, n_valid=0)):
        assert m.valid_loss is None and m.full_valid_loss is None
        assert set(m.event_data()) == {
            "step",
            "total_steps",
            "train_loss",
            "train_mean_token_accuracy",
        }


def test_fidelity_accepts_step_zero_as_the_base_model() -> None:
    run = make_run(100, 3)
    assert run.fidelity(0) == 0.0
    with pytest.raises(ValueError, match="outside"):
        run.fidelity(301)


@pytest.mark.parametrize(
    ("n_examples", "n_epochs", "batch_size", "lr"),
    [(0, 3, 1, 0.1), (10, 0, 1, 0.1), (10, 3, 0, 0.1), (10, 3, 1, 0.0)],
)
def test_impossible_runs_are_refused(
    n_examples: int, n_epochs: int, batch_size: int, lr: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        make_run(n_examples, n_epochs, batch_size=batch_size, lr=lr)
