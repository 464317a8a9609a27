"""Fit diagnosis on hand-built curves of each shape and on sandbox simulations built to show
them."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from dashboard.charts import RunSeries
from dashboard.diagnosis import RULE_TEXT, diagnose, late_drop, min_spikes, spike_steps

from .helpers import curve_rows, sandbox_run, synthetic_run, wiggle


def good_fit() -> RunSeries:
    full = {50: 0.52, 100: 0.51, 150: 0.505, 200: 0.51}
    rows = curve_rows(
        200,
        lambda s: (0.4 + 1.6 * math.exp(-s / 15)) * wiggle(s, 0.02),
        valid=lambda s: (0.5 + 1.6 * math.exp(-s / 15)) * wiggle(s + 7, 0.02),
        full_valid=lambda s: full[s],
        steps_per_epoch=50,
    )
    return synthetic_run(rows, steps_per_epoch=50)


def overfitting() -> RunSeries:
    full = {40: 0.9, 80: 0.7, 120: 0.78, 160: 0.86, 200: 0.95}
    rows = curve_rows(
        200,
        lambda s: 0.05 + 1.95 * math.exp(-s / 30),
        full_valid=lambda s: full[s],
        steps_per_epoch=40,
    )
    return synthetic_run(rows, steps_per_epoch=40, hyperparameters={"n_epochs": 5})


def test_good_fit() -> None:
    d = diagnose(good_fit(), checkpoint_steps_available=[100, 150, 200])
    assert d.verdict == "good_fit"
    assert (d.best_step, d.best_value, d.best_metric) == (150, 0.505, "full_valid_loss")
    assert d.best_is_available_checkpoint and d.best_available_step is None
    assert d.evidence == [
        "Training loss flattened and validation loss did not turn up.",
        "Lowest full-validation loss: 0.5050 at step 150.",
    ]
    assert d.suggestion == (
        "No change needed: the final model is a good choice. The lowest validation loss is at step 150."
    )
    assert d.rule_text == RULE_TEXT


def test_overfitting_names_the_gap_and_the_lost_checkpoint() -> None:
    d = diagnose(overfitting(), checkpoint_steps_available=[120, 160, 200])
    assert d.verdict == "overfitting"
    assert (d.best_step, d.best_value, d.best_is_available_checkpoint) == (80, 0.7, False)
    assert d.best_available_step == 120  # the lowest of the kept checkpoints
    assert d.evidence[0] == (
        "Full-validation loss bottomed at 0.7000 (step 80); the last 3 epoch-end points are all "
        "more than 5% above it, ending at 0.9500 (+36%)."
    )
    # Train loss around step 80 (mean of steps 70–90) and at the end (mean of the last 20):
    # 0.05 + 1.95·mean(e^(−s/30)) = 0.18827 and 0.05347.
    assert d.evidence[1].startswith("Meanwhile training loss kept falling, from 0.1883 to 0.0535")
    assert (
        "widened from 0.5117 at step 80 (validation 0.7000) to 0.8965 at the end" in d.evidence[1]
    )
    assert d.evidence[3] == (
        "The best point, step 80 (epoch 2), is not an available checkpoint: OpenAI keeps only the "
        "checkpoints of the last 3 epochs (available: steps 120, 160, 200). Of those, step 120 "
        "has the lowest full-validation loss."
    )
    assert d.suggestion.startswith(
        "Use the checkpoint at step 120 rather than the final model. Next time train for fewer "
        "epochs (e.g. n_epochs = 2 instead of 5: validation loss was lowest then)"
    )


def test_overfitting_from_validation_at_epoch_ends_without_full_validation() -> None:
    valid = {40: 0.9, 80: 0.7, 120: 0.78, 160: 0.86, 200: 0.95}
    rows = curve_rows(
        200,
        lambda s: 0.05 + 1.95 * math.exp(-s / 30),
        valid=lambda s: valid.get(s, 0.8 + 0.0001 * s),
        valid_every=40,
        steps_per_epoch=40,
    )
    d = diagnose(synthetic_run(rows, steps_per_epoch=40), checkpoint_steps_available=[200])
    assert d.verdict == "overfitting" and d.best_metric == "valid_loss"
    assert d.evidence[0].startswith("Validation loss bottomed at 0.7000 (step 80)")


def test_rising_validation_that_training_does_not_outrun_is_not_overfitting() -> None:
    # Both curves stall: the validation rise alone is not the overfitting signature.
    full = {40: 0.9, 80: 0.7, 120: 0.78, 160: 0.86, 200: 0.95}
    rows = curve_rows(
        200, lambda s: 1.0 * wiggle(s), full_valid=lambda s: full[s], steps_per_epoch=40
    )
    d = diagnose(synthetic_run(rows, steps_per_epoch=40), checkpoint_steps_available=[200])
    assert d.verdict == "underfitting"  # barely learned: final ≈ initial


def test_underfitting_still_falling() -> None:
    rows = curve_rows(100, lambda s: 0.2 + 2 * math.exp(-s / 100))
    run = synthetic_run(rows, steps_per_epoch=50, hyperparameters={"n_epochs": 2})
    drop, error = late_drop(run.train_loss)
    # Least-squares slope of 0.2 + 2e^(−s/100) over steps 81–100, times 9.9 steps (a tenth
    # of the run), over the window's mean: 0.0794.
    assert drop == pytest.approx(0.0794, abs=1e-4) and error < 1e-3
    d = diagnose(run, checkpoint_steps_available=[50, 100])
    assert d.verdict == "underfitting"
    assert d.evidence == [
        "Training loss is still falling steeply at the end: about 8% of its level per 10% of "
        "training (a line through the last 20% of the points).",
        "No validation metrics, so overfitting cannot be judged: add a validation file.",
    ]
    assert d.suggestion.startswith("Train for more epochs (e.g. n_epochs = 4 instead of 2)")
    assert "learning-rate multiplier" not in d.suggestion
    assert (d.best_step, d.best_value, d.best_is_available_checkpoint) == (None, None, False)


def one_epoch_still_improving() -> RunSeries:
    """One epoch whose noisy training loss has levelled off (no steep late fall stands out of
    its step noise) while validation loss keeps falling to the very end."""
    rows = curve_rows(
        200,
        lambda s: (0.55 + 1.5 * math.exp(-s / 12)) * wiggle(s, 0.15),
        valid=lambda s: (0.5 + 0.6 * math.exp(-s / 120)) * wiggle(s + 3, 0.02),
        valid_every=4,
        full_valid=lambda s: 0.62,
        steps_per_epoch=200,
    )
    return synthetic_run(rows, steps_per_epoch=200, hyperparameters={"n_epochs": 1})


def test_still_falling_validation_at_the_end_asks_for_more_epochs() -> None:
    run = one_epoch_still_improving()
    drop, error = late_drop(run.train_loss)
    assert not (drop > 0.05 and drop > 2 * error)  # training alone would not say underfitting
    valid_drop, valid_error = late_drop(run.valid_loss, window=0.3)
    assert valid_drop > 0.03 and valid_drop > 2 * valid_error
    d = diagnose(run, checkpoint_steps_available=[200])
    assert d.verdict == "underfitting"
    assert d.summary == (
        "Underfitting: validation loss was still falling when training stopped, so more epochs "
        "would help."
    )
    assert d.evidence[0].startswith(
        f"Validation loss is still falling at the end: about {valid_drop:.0%} of its level per "
        "10% of training"
    )
    assert d.suggestion.startswith("Train for more epochs (e.g. n_epochs = 3 instead of 1)")
    assert "No change needed" not in d.suggestion


def test_validation_falling_contradicted_by_full_validation_is_not_underfitting() -> None:
    # The mini-batch trend still falls, but the last full-validation point is not the lowest.
    run = one_epoch_still_improving()
    run.full_valid_loss = [(100, 0.60), (200, 0.66)]
    assert diagnose(run, checkpoint_steps_available=[200]).verdict == "good_fit"


def test_validation_flat_at_the_end_stays_a_good_fit() -> None:
    rows = curve_rows(
        200,
        lambda s: (0.55 + 1.5 * math.exp(-s / 12)) * wiggle(s, 0.15),
        valid=lambda s: (0.5 + 0.6 * math.exp(-s / 20)) * wiggle(s + 3, 0.02),
        valid_every=4,
        steps_per_epoch=200,
    )
    run = synthetic_run(rows, steps_per_epoch=200, hyperparameters={"n_epochs": 1})
    assert diagnose(run, checkpoint_steps_available=[200]).verdict == "good_fit"


def test_underfitting_barely_learned() -> None:
    rows = curve_rows(150, lambda s: (2.0 - 0.3 * s / 150) * wiggle(s))
    run = synthetic_run(rows, hyperparameters={"learning_rate_multiplier": 0.005})
    d = diagnose(run, checkpoint_steps_available=[])
    assert d.verdict == "underfitting"
    assert d.evidence[0].startswith("Training loss ends at 1.71")
    assert "86% of its initial 1.9954" in d.evidence[0]
    assert d.suggestion == (
        "Raise the learning-rate multiplier (currently 0.005), e.g. double it: OpenAI's advice "
        "when the model does not appear to converge."
    )


def unstable_rows() -> list[dict[str, object]]:
    spikes = {60, 100, 140, 180}
    return curve_rows(
        200, lambda s: (0.5 + 1.5 * math.exp(-s / 30)) * wiggle(s, 0.02) * (3 if s in spikes else 1)
    )


def test_unstable_comes_first() -> None:
    run = synthetic_run(
        unstable_rows(), hyperparameters={"learning_rate_multiplier": 8, "batch_size": 1}
    )
    assert spike_steps(run.train_loss) == [60, 100, 140, 180]
    d = diagnose(run, checkpoint_steps_available=[])
    assert d.verdict == "unstable"
    assert d.summary == "Unstable: the training loss spiked at 4 steps."
    assert d.evidence[0] == "Loss spikes (above 1.5× the recent median) at steps 60, 100, 140, 180."
    assert d.suggestion.startswith(
        "Lower the learning-rate multiplier (currently 8), e.g. halve it, or raise the batch size "
        "(currently 1)"
    )


def test_long_runs_need_a_share_of_spikes() -> None:
    assert [min_spikes(n) for n in (10, 300, 301, 1000, 5000)] == [3, 3, 4, 10, 50]


def test_two_spikes_are_not_instability() -> None:
    rows = unstable_rows()
    for row in rows:
        if row["step"] in (140, 180):
            row["train_loss"] = (0.5 + 1.5 * math.exp(-row["step"] / 30)) * wiggle(
                row["step"], 0.02
            )
    d = diagnose(synthetic_run(rows), checkpoint_steps_available=[])
    assert d.verdict == "good_fit"


def test_noisy_but_healthy_run_is_not_unstable() -> None:
    # Batch-to-batch scatter of small mixed batches: many steps exceed 1.5× the running median,
    # none stands out from the run's own scatter.
    rng = random.Random(7)
    values = [(0.3 + 1.7 * math.exp(-s / 40)) * math.exp(rng.gauss(0, 0.35)) for s in range(1, 301)]
    naive = sum(values[i] > 1.5 * statistics.median(values[i - 10 : i]) for i in range(10, 300))
    assert naive > 20
    run = RunSeries(label="noisy", train_loss=list(enumerate(values, start=1)))
    assert spike_steps(run.train_loss) == []
    assert diagnose(run, checkpoint_steps_available=[]).verdict == "good_fit"


def test_insufficient_data() -> None:
    run = RunSeries(
        label="new", train_loss=[(s, 2.0 - 0.1 * s) for s in range(1, 10)], total_steps=300
    )
    d = diagnose(run, checkpoint_steps_available=[])
    assert d.verdict == "insufficient_data"
    assert d.summary == "Only 9 training-loss points: too few to judge the fit."
    assert d.evidence == ["Only 9 of 300 steps so far: the verdict may change."]
    assert d.suggestion == "Wait until at least 10 steps have reported metrics."


def test_running_job_is_flagged_as_provisional() -> None:
    run = good_fit()
    run.total_steps = 400
    d = diagnose(run, checkpoint_steps_available=[])
    assert d.evidence[-1] == "Only 200 of 400 steps so far: the verdict may change."
    assert d.evidence[-2] == "The best point, step 150 (epoch 3), has no checkpoint available."


def test_rule_text_states_the_thresholds() -> None:
    for fragment in (
        "fewer than 10 training-loss points",
        "at least 3 spikes",
        "exceeds 1.5× the median of the previous 10 steps",
        "more than 5% above the minimum",
        "last 25% of training",
        "above 0.6× the initial loss",
        "OpenAI keeps only the checkpoints of the last 3 epochs",
    ):
        assert fragment in RULE_TEXT


# --- sandbox simulations ------------------------------------------------------------------

SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_sandbox_small_data_many_epochs_overfits(seed: int) -> None:
    run, kept = sandbox_run(20, 15, seed=seed)
    d = diagnose(run, checkpoint_steps_available=kept)
    assert d.verdict == "overfitting"
    assert d.best_step is not None and d.best_step <= 3 * 20  # within the first three epochs
    assert not d.best_is_available_checkpoint and d.best_available_step in kept
    assert "fewer epochs" in d.suggestion


@pytest.mark.parametrize("seed", SEEDS)
def test_sandbox_tiny_learning_rate_underfits(seed: int) -> None:
    run, kept = sandbox_run(50, 3, lr=0.005, seed=seed)
    d = diagnose(run, checkpoint_steps_available=kept)
    assert d.verdict == "underfitting"
    assert "Raise the learning-rate multiplier (currently 0.005)" in d.suggestion


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["supervised", "dpo"])
def test_sandbox_huge_learning_rate_is_unstable(seed: int, method: str) -> None:
    run, kept = sandbox_run(100, 3, lr=30, seed=seed, method=method)
    d = diagnose(run, checkpoint_steps_available=kept)
    assert d.verdict == "unstable"
    assert "(currently 30)" in d.suggestion


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["supervised", "dpo"])
def test_sandbox_default_run_on_enough_data_fits_well(seed: int, method: str) -> None:
    run, kept = sandbox_run(200, 3, lr=0.05, seed=seed, method=method)
    assert diagnose(run, checkpoint_steps_available=kept).verdict == "good_fit"


@pytest.mark.parametrize("seed", SEEDS)
def test_sandbox_lr_one_on_100_examples_overfits(seed: int) -> None:
    # 100 examples × 3 epochs at multiplier 1 memorises quickly in the simulator: full
    # validation is lowest after epoch 1 and ends well above it.
    run, kept = sandbox_run(100, 3, lr=1, seed=seed)
    full = [value for _, value in run.full_valid_loss]
    assert full.index(min(full)) == 0 and full[-1] > 1.3 * full[0]
    d = diagnose(run, checkpoint_steps_available=kept)
    assert d.verdict == "overfitting"
    assert d.best_step == 100 and d.best_is_available_checkpoint
    assert d.suggestion.startswith("Use the checkpoint at step 100 rather than the final model.")


@pytest.mark.parametrize("seed", [1, 2])
def test_sandbox_one_epoch_on_little_data_asks_for_more_epochs(seed: int) -> None:
    # 50 examples for one epoch: the validation loss is still coming down when training stops.
    run, kept = sandbox_run(50, 1, seed=seed)
    d = diagnose(run, checkpoint_steps_available=kept)
    assert d.verdict == "underfitting"
    assert "more epochs would help" in d.summary
    assert d.suggestion.startswith("Train for more epochs (e.g. n_epochs = 3 instead of 1)")


def test_sandbox_without_validation_cannot_overfit() -> None:
    run, kept = sandbox_run(20, 15, seed=0, n_valid=0)
    d = diagnose(run, checkpoint_steps_available=kept)
    assert d.verdict == "good_fit"
    assert (
        "No validation metrics, so overfitting cannot be judged: add a validation file."
        in d.evidence
    )


def _spike_steps_by_sorting_every_window(train: list[tuple[int, float]]) -> list[int]:
    """The rule as written: the median of each window computed from scratch."""
    from dashboard.diagnosis import SPIKE_FACTOR, SPIKE_SIGMAS, SPIKE_WINDOW

    ratios = []
    for i in range(SPIKE_WINDOW, len(train)):
        median = statistics.median(value for _, value in train[i - SPIKE_WINDOW : i])
        if median > 0 and train[i][1] > 0:
            ratios.append((train[i][0], math.log(train[i][1] / median)))
    if not ratios:
        return []
    centre = statistics.median(ratio for _, ratio in ratios)
    below = [centre - ratio for _, ratio in ratios if ratio < centre]
    scatter = 1.4826 * statistics.median(below) if below else 0.0
    threshold = max(math.log(SPIKE_FACTOR), centre + SPIKE_SIGMAS * scatter)
    return [step for step, ratio in ratios if ratio > threshold]


@pytest.mark.parametrize("seed", range(40))
def test_the_sliding_median_finds_the_same_spikes_as_sorting_every_window(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([0, 5, 10, 11, 12, 50, 400])
    values: list[float] = []
    for step in range(n):
        base = 2.5 * math.exp(-step / 150) + rng.gauss(0, 0.05)
        if rng.random() < 0.04:
            base *= rng.uniform(2, 6)  # spikes
        if rng.random() < 0.05:
            base = values[-1] if values else 1.0  # ties
        if rng.random() < 0.02:
            base = rng.choice([0.0, -0.5])  # skipped values
        values.append(round(base, rng.choice([2, 6, 12])))
    train = list(enumerate(values, 1))
    expected = _spike_steps_by_sorting_every_window(train)
    assert spike_steps(train) == expected
