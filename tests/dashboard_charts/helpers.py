"""Synthetic curves, sandbox runs as ``RunSeries``, and walking figure JSON."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.charts import RunSeries
from sandbox.simulation import Hyperparameters, TrainingRun, TrainingSpec

CHARTS_COMMON_JS = Path(__file__).resolve().parents[2] / "static" / "js" / "charts_common.js"
XSS = "<img src=x onerror=alert(1)>"
XSS_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"


def wiggle(step: int, size: float = 0.01) -> float:
    """Deterministic, zero-mean-ish multiplicative noise: 1 ± size."""
    return 1 + size * math.sin(step * 1.7) * math.cos(step * 0.31)


def curve_rows(
    steps: int,
    train: Callable[[int], float],
    *,
    valid: Callable[[int], float] | None = None,
    valid_every: int = 10,
    full_valid: Callable[[int], float] | None = None,
    steps_per_epoch: int | None = None,
) -> list[dict[str, Any]]:
    """MetricPoint-like rows: train every step, valid every ``valid_every`` steps and at epoch
    ends, full valid at epoch ends (as the sandbox and OpenAI report them)."""
    rows = []
    for step in range(1, steps + 1):
        row: dict[str, Any] = {"step": step, "train_loss": train(step), "extra": {}}
        epoch_end = steps_per_epoch is not None and step % steps_per_epoch == 0
        if valid is not None and (step % valid_every == 0 or epoch_end):
            row["valid_loss"] = valid(step)
        if full_valid is not None and epoch_end:
            row["full_valid_loss"] = full_valid(step)
        rows.append(row)
    return rows


def synthetic_run(
    rows: list[dict[str, Any]], *, steps_per_epoch: int | None = None, **kwargs: Any
) -> RunSeries:
    total = max(row["step"] for row in rows)
    return RunSeries.from_rows(
        rows,
        label=kwargs.pop("label", "synthetic"),
        total_steps=kwargs.pop("total_steps", total),
        steps_per_epoch=steps_per_epoch,
        **kwargs,
    )


def sandbox_run(
    n_examples: int,
    n_epochs: int,
    *,
    lr: float = 0.05,
    batch_size: int = 1,
    seed: int = 0,
    n_valid: int = 10,
    method: str = "supervised",
) -> tuple[RunSeries, list[int]]:
    """A sandbox simulation as the dashboard would see it, with the steps of the checkpoints
    OpenAI (and the sandbox) keep: the last three epoch ends."""
    spec = TrainingSpec(
        method=method,
        n_examples=n_examples,
        n_valid_examples=n_valid,
        tokens_per_epoch=n_examples * 400,
        seed=seed,
        model="gpt-4o-mini-2024-07-18",
    )
    hp = Hyperparameters(n_epochs, batch_size, lr, 0.1 if method == "dpo" else None)
    run = TrainingRun(spec, hp)
    rows = []
    for step in range(1, run.total_steps + 1):
        m = run.metrics(step)
        rows.append(
            {
                "step": step,
                "train_loss": m.train_loss,
                "train_accuracy": m.train_mean_token_accuracy,
                "valid_loss": m.valid_loss,
                "valid_accuracy": m.valid_mean_token_accuracy,
                "full_valid_loss": m.full_valid_loss,
                "full_valid_accuracy": m.full_valid_mean_token_accuracy,
                "extra": dict(m.extra),
            }
        )
    ends = run.epoch_end_steps()
    checkpoints = [
        {
            "step": step,
            "model_name": f"ft:gpt-4o-mini:org::ckpt-step-{step}",
            "metrics": run.metrics(step).checkpoint_metrics(),
        }
        for step in ends[-3:]
    ]
    series = RunSeries.from_rows(
        rows,
        label=f"sandbox {n_examples}x{n_epochs} lr {lr:g}",
        run_id=f"run-{n_examples}-{n_epochs}-{lr:g}-{seed}",
        total_steps=run.total_steps,
        n_epochs=n_epochs,
        trained_tokens=run.trained_tokens(),
        checkpoints=checkpoints,
        hyperparameters={
            "n_epochs": n_epochs,
            "batch_size": batch_size,
            "learning_rate_multiplier": lr,
        },
    )
    return series, ends[-3:]


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON-like value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings(item)


def run_node(script: str) -> Any:
    """Runs ``script`` in Node with ``tb`` = charts_common.js (loaded as a module) and
    returns the JSON it prints; skips the test when Node is not installed."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    done = subprocess.run(
        [node, "-e", f"var tb = require({json.dumps(str(CHARTS_COMMON_JS))});\n{script}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(done.stdout)
