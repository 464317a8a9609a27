from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.simulation import Hyperparameters, TrainingRun, TrainingSpec

from .helpers import SEEDS, all_metrics, make_run, spikes, tail, train_losses

ROOT = Path(__file__).resolve().parents[2]
_CHILD = """
from sandbox.simulation import Hyperparameters, TrainingRun, TrainingSpec
run = TrainingRun(TrainingSpec("supervised", 40, 8, 12000, 77, "gpt-4o"), Hyperparameters(4, 2, 0.3))
print(run.results_csv(), end="")
print(repr(run.fidelity(45)))
"""


def test_same_inputs_give_identical_metrics() -> None:
    assert all_metrics(make_run(60, 4, seed=9)) == all_metrics(make_run(60, 4, seed=9))
    dpo = {"method": "dpo", "beta": 0.2, "seed": 9}
    assert all_metrics(make_run(60, 4, **dpo)) == all_metrics(make_run(60, 4, **dpo))


def test_metrics_do_not_depend_on_the_process() -> None:
    # hash() is salted per process; the simulation must not depend on it.
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run = TrainingRun(
        TrainingSpec("supervised", 40, 8, 12000, 77, "gpt-4o"), Hyperparameters(4, 2, 0.3)
    )
    assert child.stdout == run.results_csv() + repr(run.fidelity(45)) + "\n"


def test_metrics_do_not_depend_on_the_order_steps_are_asked_in() -> None:
    forward = all_metrics(make_run(80, 3, seed=4))
    run = make_run(80, 3, seed=4)
    backward = [run.metrics(step) for step in range(run.total_steps, 0, -1)]
    assert backward[::-1] == forward


def test_different_seeds_give_different_noise() -> None:
    a, b = train_losses(make_run(100, 3, seed=1)), train_losses(make_run(100, 3, seed=2))
    assert sum(x != y for x, y in zip(a, b, strict=True)) == len(a)


def test_more_epochs_extend_the_same_run() -> None:
    # Same seed and data: the first epoch is the same whether the job runs 1 or 3 epochs.
    one, three = train_losses(make_run(100, 1, seed=3)), train_losses(make_run(100, 3, seed=3))
    assert three[:100] == one


def test_large_runs_are_cheap() -> None:
    run = make_run(25_000, 1, n_valid=500)
    assert run.total_steps == 25_000
    assert run.metrics(17_345).step == 17_345  # any step, without the ones before it
    assert len(run.results_csv().splitlines()) == 25_001


@settings(max_examples=60, deadline=None)
@given(
    method=st.sampled_from(["supervised", "dpo"]),
    n_examples=st.integers(1, 5_000),
    n_epochs=st.integers(1, 50),
    batch_size=st.integers(1, 256),
    lr=st.floats(0.001, 100),
    beta=st.floats(0.01, 2),
    n_valid=st.integers(0, 500),
    tokens=st.integers(0, 5_000_000),
    seed=st.integers(0, 2_147_483_647),
)
def test_every_metric_is_finite_and_in_range(
    method: str, n_examples: int, n_epochs: int, batch_size: int, lr: float, beta: float,
    n_valid: int, tokens: int, seed: int,
) -> None:  # fmt: skip
    spec = TrainingSpec(method, n_examples, n_valid, tokens, seed, "gpt-4o-mini-2024-07-18")
    run = TrainingRun(spec, Hyperparameters(n_epochs, batch_size, lr, beta))
    steps = {1, min(2, run.total_steps), run.total_steps // 2 or 1, run.total_steps}
    steps.update(run.epoch_end_steps()[:3])
    for step in steps:
        m = run.metrics(step)
        for key, value in m.event_data().items():
            assert math.isfinite(value), key
            if key.endswith("loss"):
                assert value > 0, key
            if key.endswith("accuracy"):
                assert 0 <= value <= 1, key
        assert 0 <= run.fidelity(step) <= 1


# --- fidelity ------------------------------------------------------------------------------


def _fidelities(run: TrainingRun) -> list[float]:
    return [run.fidelity(step) for step in range(run.total_steps + 1)]


def test_fidelity_rises_from_zero_and_never_falls_on_stable_runs() -> None:
    for run in (
        make_run(100, 3),
        make_run(30, 12),
        make_run(50, 6, lr=0.01),
        make_run(60, 3, method="dpo", beta=0.1),
    ):
        fidelity = _fidelities(run)
        assert fidelity[0] == 0.0
        assert all(a <= b for a, b in itertools.pairwise(fidelity))


def test_fidelity_is_high_when_trained_and_low_when_underfit() -> None:
    for seed in SEEDS:
        assert make_run(100, 3, seed=seed).fidelity(300) >= 0.9
        assert make_run(50, 3, lr=0.005, seed=seed).fidelity(150) < 0.6
        assert make_run(60, 3, method="dpo", beta=0.1, seed=seed).fidelity(180) >= 0.9


def test_fidelity_is_higher_where_the_loss_is_lower() -> None:
    # A slowly learning run: each epoch-end checkpoint has a lower loss and a higher fidelity.
    run = make_run(50, 6, lr=0.01, seed=2)
    ends = run.epoch_end_steps()
    losses = [tail(train_losses(run)[:end], 10) for end in ends]
    fidelity = [run.fidelity(end) for end in ends]
    assert all(a > b for a, b in itertools.pairwise(losses))
    assert all(a < b for a, b in itertools.pairwise(fidelity))
    assert fidelity[0] < 0.9


def test_unstable_runs_lose_fidelity_at_spikes() -> None:
    run = make_run(100, 3, lr=50, seed=1)
    assert spikes(train_losses(run)) > 0
    fidelity = _fidelities(run)
    assert any(b < a - 0.1 for a, b in itertools.pairwise(fidelity))
    assert min(fidelity[200:]) < 0.9
