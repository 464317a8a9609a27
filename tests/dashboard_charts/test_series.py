"""RunSeries: building from rows, x axes, epochs, best points and summary numbers."""

from __future__ import annotations

import math

import pytest

from dashboard.charts import (
    CheckpointMark,
    RunSeries,
    Series,
    best_point,
    effective_x_axis,
    summary_metrics,
)

ROWS = [
    {"step": 1, "train_loss": 2.0, "train_mean_token_accuracy": 0.4, "extra": {"x": 1.0}},
    {"step": 2, "train_loss": 1.5, "valid_loss": 1.8, "valid_mean_token_accuracy": 0.5},
    {"step": 3, "train_loss": float("nan"), "valid_loss": None},
    {
        "step": 4,
        "train_loss": 1.0,
        "valid_loss": 1.4,
        "full_valid_loss": 1.3,
        "full_valid_mean_token_accuracy": 0.6,
    },
    {"step": 6, "train_loss": 0.8, "valid_loss": 1.5, "full_valid_loss": 1.35},
    {"step": 5, "train_loss": 0.9},  # out of order on purpose
]


def make(**kwargs: object) -> RunSeries:
    return RunSeries.from_rows(ROWS, label="run a", run_id="a", **kwargs)  # type: ignore[arg-type]


def test_from_rows_keeps_sparse_sorted_finite_columns() -> None:
    run = make(total_steps=6, n_epochs=3, trained_tokens=6000)
    assert run.train_loss == [(1, 2.0), (2, 1.5), (4, 1.0), (5, 0.9), (6, 0.8)]  # NaN dropped
    assert run.valid_loss == [(2, 1.8), (4, 1.4), (6, 1.5)]  # sparse, never densified
    assert run.full_valid_loss == [(4, 1.3), (6, 1.35)]
    assert run.train_accuracy == [(1, 0.4)]  # provider spelling accepted
    assert run.valid_accuracy == [(2, 0.5)]
    assert run.full_valid_accuracy == [(4, 0.6)]
    assert run.steps_per_epoch == 2.0 and run.tokens_per_step == 1000.0
    assert run.n_epochs == 3 and run.last_step == 6 and run.end_step == 6


def test_repeated_steps_keep_the_last_value() -> None:
    run = RunSeries(label="r", train_loss=[(2, 1.0), (1, 3.0), (2, 0.5), (3, math.inf)])
    assert run.train_loss == [(1, 3.0), (2, 0.5)]


def test_x_axes() -> None:
    run = make(total_steps=6, n_epochs=3, trained_tokens=6000)
    assert run.x_of([2, 3], "step") == [2.0, 3.0]
    assert run.x_of([2, 3], "epoch") == [1.0, 1.5]
    assert run.x_of([2, 3], "tokens") == [2000.0, 3000.0]
    assert run.series("valid_loss", "epoch") == Series(
        "valid_loss", [1.0, 2.0, 3.0], [1.8, 1.4, 1.5]
    )
    bare = make()
    assert bare.supports("step") and not bare.supports("epoch") and not bare.supports("tokens")
    with pytest.raises(ValueError, match="no data for an x axis in epoch"):
        bare.x_of([1], "epoch")
    with pytest.raises(ValueError, match="unknown x axis"):
        run.x_of([1], "seconds")
    assert effective_x_axis([run, bare], "epoch") == "step"
    assert effective_x_axis([run], "tokens") == "tokens"


def test_tokens_per_step_given_directly_wins() -> None:
    run = make(total_steps=6, trained_tokens=6000, tokens_per_step=512)
    assert run.tokens_per_step == 512.0
    assert make(total_steps=0, trained_tokens=6000).tokens_per_step is None  # no division by 0


def test_epochs() -> None:
    run = RunSeries(
        label="r", train_loss=[(s, 1.0) for s in range(1, 26)], steps_per_epoch=10, total_steps=30
    )
    assert run.epoch_end_steps() == [10, 20, 30]  # planned length, not just the data so far
    assert [run.epoch_of(s) for s in (1, 10, 11, 20, 21)] == [1, 1, 2, 2, 3]
    assert run.end_step == 30 and run.last_step == 25


def test_checkpoints_from_mappings() -> None:
    run = make(
        checkpoints=[
            {"step": 6, "model_name": "ft:b", "metrics": {"full_valid_loss": 1.35, "bad": "x"}},
            CheckpointMark(step=4, model_id="ft:a", metrics={"step": 4.0}),
        ]
    )
    assert [c.step for c in run.checkpoints] == [4, 6]  # sorted
    assert run.checkpoints[1] == CheckpointMark(6, "ft:b", {"full_valid_loss": 1.35})


def test_best_point_prefers_full_validation_and_falls_back() -> None:
    run = make()
    assert best_point(run, "loss") == best_point(run)
    best = best_point(run)
    assert best is not None and (best.metric, best.step, best.value) == ("full_valid_loss", 4, 1.3)
    no_full = RunSeries(label="r", valid_loss=[(1, 2.0), (2, 1.0), (3, 1.0)])
    fallback = best_point(no_full)
    assert fallback is not None and (fallback.metric, fallback.step) == (
        "valid_loss",
        2,
    )  # earliest tie
    accuracy = best_point(run, "accuracy")
    assert accuracy is not None and (accuracy.metric, accuracy.value) == (
        "full_valid_accuracy",
        0.6,
    )
    assert best_point(RunSeries(label="r", train_loss=[(1, 1.0)])) is None


def test_summary_metrics() -> None:
    summary = summary_metrics(make())
    assert summary == {
        "last_step": 6,
        "final_train_loss": 0.8,
        "final_valid_loss": 1.5,
        "final_full_valid_loss": 1.35,
        "best_full_valid_loss": 1.3,
        "best_full_valid_step": 4,
        "best_valid_loss": 1.4,
        "best_valid_step": 4,
        "final_train_accuracy": 0.4,
        "final_valid_accuracy": 0.5,
        "final_full_valid_accuracy": 0.6,
        "best_full_valid_accuracy": 0.6,
        "best_full_valid_accuracy_step": 4,
    }
    empty = summary_metrics(RunSeries(label="empty"))
    assert set(empty.values()) == {None}
