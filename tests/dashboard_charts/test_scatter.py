"""Best validation loss against a hyperparameter."""

from __future__ import annotations

import copy

import plotly.graph_objects as go

from dashboard.charts import RUN_PALETTE, scatter_best_vs_hyperparameter


def row(
    label: str, lr: object, full: float | None, valid: float | None, **extra: object
) -> dict[str, object]:
    return {
        "label": label,
        "hyperparameters": {"learning_rate_multiplier": lr, "n_epochs": 3},
        "metrics": {"best_full_valid_loss": full, "best_valid_loss": valid},
        **extra,
    }


ROWS = [
    row("lr 0.05", 0.05, 0.52, 0.50),
    row("lr 0.1", 0.1, 0.48, 0.47, colour="#000000"),
    row("lr 2, no full validation", 2, None, 0.9),
    row("auto", "auto", 0.5, 0.5),
    row("no validation", 0.2, None, None),
]


def test_points_fallback_and_log_axis() -> None:
    figure = scatter_best_vs_hyperparameter(ROWS, "learning_rate_multiplier")
    go.Figure(copy.deepcopy(figure))
    full, fallback = figure["data"]
    assert (full["x"], full["y"], full["text"]) == (
        [0.05, 0.1],
        [0.52, 0.48],
        ["lr 0.05", "lr 0.1"],
    )
    assert full["marker"]["color"] == [RUN_PALETTE[0], "#000000"]  # position, or the run's own
    assert full["mode"] == "markers+text"
    assert (fallback["x"], fallback["y"]) == ([2.0], [0.9])
    assert (
        fallback["marker"]["color"] == [RUN_PALETTE[2]]
        and fallback["marker"]["symbol"] == "circle-open"
    )
    assert fallback["name"] == "best valid loss (no full validation)"
    layout = figure["layout"]
    assert layout["xaxis"]["type"] == "log"
    assert layout["meta"]["excluded"] == ["auto", "no validation"]
    assert layout["meta"]["description"] == (
        "Best validation loss of 3 runs against Learning-rate multiplier; left out (no numeric "
        "Learning-rate multiplier or no validation): auto, no validation."
    )


def test_linear_axis_for_other_parameters() -> None:
    figure = scatter_best_vs_hyperparameter(ROWS, "n_epochs")
    assert figure["layout"]["xaxis"]["type"] == "linear"
    assert figure["data"][0]["x"] == [3.0, 3.0, 3.0]  # "auto" lr does not matter here
    assert figure["layout"]["title"]["text"] == "Best validation loss vs Epochs"


def test_no_usable_runs() -> None:
    figure = scatter_best_vs_hyperparameter([row("x", 0.0, 1.0, 1.0)], "learning_rate_multiplier")
    assert figure["data"] == []  # 0 has no place on a log axis
    assert figure["layout"]["annotations"][0]["text"].startswith("No run has both")
