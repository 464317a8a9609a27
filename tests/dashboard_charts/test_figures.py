"""Run and comparison figures: traces, smoothing, epochs, checkpoints, best point, axes."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import plotly.graph_objects as go
import pytest

from dashboard.charts import (
    RUN_PALETTE,
    RunSeries,
    compare_figures,
    ema,
    run_figures,
)

from .helpers import curve_rows, strings, synthetic_run


def three_epochs(**kwargs: Any) -> RunSeries:
    """30 steps, 10 per epoch; validation every 5 steps, full validation at epoch ends with its
    minimum (0.5) at step 20; checkpoints at the three epoch ends."""
    full = {10: 0.6, 20: 0.5, 30: 0.55}
    rows = curve_rows(
        30,
        lambda s: 2.0 / math.sqrt(s),
        valid=lambda s: 2.2 / math.sqrt(s),
        valid_every=5,
        full_valid=lambda s: full[s],
        steps_per_epoch=10,
    )
    for row in rows:
        row["train_accuracy"] = 0.5 + row["step"] / 100
        if row["step"] in full:
            row["full_valid_accuracy"] = 1 - full[row["step"]]
    checkpoints = [
        {
            "step": s,
            "model_name": f"ft:m:ckpt-step-{s}",
            "metrics": {"step": float(s), "full_valid_loss": full[s]},
        }
        for s in (10, 20, 30)
    ]
    kwargs.setdefault("label", "run a")
    kwargs.setdefault("run_id", "a")
    return synthetic_run(
        rows, steps_per_epoch=10, trained_tokens=30_000, checkpoints=checkpoints, **kwargs
    )


def by_name(figure: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {trace["name"]: trace for trace in figure["data"]}


def validate(figure: dict[str, Any]) -> None:
    go.Figure(copy.deepcopy(figure))  # raises on any property plotly does not know
    json.dumps(figure, allow_nan=False)  # strict JSON: no NaN or Infinity
    assert not [s for s in strings(figure) if "http:" in s or "https:" in s or "//" in s]


def test_run_loss_figure_traces() -> None:
    figures = run_figures(three_epochs())
    loss = figures["loss"]
    validate(loss)
    traces = by_name(loss)
    assert list(traces) == [
        "train loss",
        "train loss (raw)",
        "valid loss",
        "full-valid loss",
        "checkpoints",
        "best full-valid loss",
    ]
    raw, smoothed = traces["train loss (raw)"], traces["train loss"]
    assert raw["x"] == [float(s) for s in range(1, 31)]
    assert raw["y"][0] == 2.0 and raw["y"][3] == 1.0
    assert smoothed["y"] == raw["y"]  # smoothing 0
    assert raw["opacity"] < 1 and raw["hoverinfo"] == "skip" and raw["showlegend"] is False
    assert smoothed["legendgroup"] == raw["legendgroup"] == "train"
    # The contract the page's JS relies on.
    assert smoothed["meta"] == {"run": "a", "series": "train_loss", "role": "smoothed"}
    assert raw["meta"]["role"] == "raw"
    assert smoothed["customdata"][:2] == [[2.0, 1], [2.0 / math.sqrt(2), 2]]
    valid = traces["valid loss"]
    assert valid["x"] == [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]  # sparse stays sparse
    assert valid["mode"] == "lines+markers" and valid["meta"]["role"] == "points"
    assert traces["full-valid loss"]["y"] == [0.6, 0.5, 0.55]


def test_smoothing_applies_to_training_only() -> None:
    run = three_epochs()
    loss = run_figures(run, smoothing=0.6)["loss"]
    traces = by_name(loss)
    raw = traces["train loss (raw)"]["y"]
    assert traces["train loss"]["y"] == ema(raw, 0.6)
    assert traces["train loss"]["y"] != raw
    assert traces["valid loss"]["y"] == [2.2 / math.sqrt(s) for s in (5, 10, 15, 20, 25, 30)]
    assert loss["layout"]["meta"]["smoothing"] == 0.6
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        run_figures(run, smoothing=1.0)


def test_epoch_lines_checkpoints_and_best_point() -> None:
    loss = run_figures(three_epochs())["loss"]
    shapes = loss["layout"]["shapes"]
    assert [(s["x0"], s["x1"], s["yref"]) for s in shapes] == [
        (10.0, 10.0, "paper"),
        (20.0, 20.0, "paper"),
    ]
    checkpoints = by_name(loss)["checkpoints"]
    assert checkpoints["x"] == [10.0, 20.0, 30.0] and checkpoints["y"] == [0.6, 0.5, 0.55]
    assert checkpoints["text"][1] == (
        "<b>checkpoint ft:m:ckpt-step-20</b><br>step 20<br>full_valid_loss 0.5000"
    )
    best = by_name(loss)["best full-valid loss"]
    assert (best["x"], best["y"]) == ([20.0], [0.5])
    assert best["text"] == ["best full-valid loss 0.5000 at step 20"]
    assert best["marker"]["symbol"] == "star"


def test_accuracy_figure() -> None:
    accuracy = run_figures(three_epochs())["accuracy"]
    validate(accuracy)
    traces = by_name(accuracy)
    assert list(traces) == [
        "train accuracy",
        "train accuracy (raw)",
        "full-valid accuracy",
        "checkpoints",
        "best full-valid accuracy",
    ]
    assert traces["best full-valid accuracy"]["text"] == [
        "best full-valid accuracy 0.5000 at step 20"
    ]
    # Checkpoint markers sit on the accuracy curve there.
    assert traces["checkpoints"]["y"] == pytest.approx([0.4, 0.5, 0.45])


@pytest.mark.parametrize(
    ("axis", "x_of_step_20", "title"),
    [("step", 20.0, "step"), ("epoch", 2.0, "epoch"), ("tokens", 20_000.0, "tokens seen")],
)
def test_x_axes(axis: str, x_of_step_20: float, title: str) -> None:
    loss = run_figures(three_epochs(), x_axis=axis)["loss"]
    validate(loss)
    assert by_name(loss)["best full-valid loss"]["x"] == [x_of_step_20]
    assert loss["layout"]["xaxis"]["title"]["text"] == title
    assert loss["layout"]["meta"]["x_axis"] == axis
    assert loss["layout"]["shapes"][1]["x0"] == x_of_step_20  # epoch 2 ends at step 20
    if axis != "step":
        assert "step %{customdata[1]:,}" in by_name(loss)["valid loss"]["hovertemplate"]


def test_unavailable_axis_falls_back_to_steps() -> None:
    run = RunSeries(label="r", train_loss=[(s, 1.0 / s) for s in range(1, 20)])
    loss = run_figures(run, x_axis="tokens")["loss"]
    assert loss["layout"]["meta"]["x_axis"] == "step"
    assert loss["layout"]["shapes"] == []
    with pytest.raises(ValueError, match="unknown x axis"):
        run_figures(run, x_axis="hours")


def test_log_y_applies_to_loss_only() -> None:
    figures = run_figures(three_epochs(), log_y=True)
    assert figures["loss"]["layout"]["yaxis"]["type"] == "log"
    assert figures["accuracy"]["layout"]["yaxis"]["type"] == "linear"


def test_long_runs_are_downsampled_per_trace() -> None:
    rows = curve_rows(
        12_000,
        lambda s: 1 + 1 / s + 0.01 * math.sin(s),
        valid=lambda s: 1.1 + 1 / s,
        valid_every=4,
        full_valid=lambda s: 1.05,
        steps_per_epoch=3000,
    )
    figures = run_figures(synthetic_run(rows, steps_per_epoch=3000), smoothing=0.9)
    for figure in figures.values():
        for trace in figure["data"]:
            assert len(trace["x"]) <= 2000
    traces = by_name(figures["loss"])
    assert len(traces["train loss"]["x"]) == 2000 and len(traces["valid loss"]["x"]) == 2000
    assert traces["train loss"]["x"][-1] == 12_000.0 and traces["full-valid loss"]["x"] == [
        3000.0,
        6000.0,
        9000.0,
        12_000.0,
    ]
    # The smoothed line is the EMA of exactly the raw points the page receives.
    raw = [row[0] for row in traces["train loss"]["customdata"]]
    assert traces["train loss"]["y"] == ema(raw, 0.9)


def test_empty_run() -> None:
    figures = run_figures(RunSeries(label="new run"))
    for kind, figure in figures.items():
        validate(figure)
        assert figure["data"] == []
        assert figure["layout"]["annotations"][0]["text"] == f"No {kind} metrics yet."
        assert (
            figure["layout"]["meta"]["description"]
            == f"{kind.capitalize()} of new run by step: no {kind} metrics yet."
        )


def test_accessible_title_and_description() -> None:
    loss = run_figures(three_epochs())["loss"]
    assert loss["layout"]["title"]["text"] == "Loss — run a"
    assert loss["layout"]["meta"]["description"] == (
        "Loss of run a by step: train loss from 2.0000 at step 1 to 0.3651 at step 30 "
        "(30 points); valid loss from 0.9839 at step 5 to 0.4017 at step 30 (6 points); "
        "full-valid loss from 0.6000 at step 10 to 0.5500 at step 30 (3 points); "
        "best full-valid loss 0.5000 at step 20; 3 checkpoints."
    )


def test_comparison_colours_groups_and_epochs() -> None:
    runs = [
        three_epochs(label="a", run_id="1"),
        three_epochs(label="b", run_id="2"),
        three_epochs(label="c", run_id="3", colour="#123456"),
        three_epochs(label="d", run_id="4", colour="red; background:url(x)"),
    ]
    figures = compare_figures(runs, x_axis="epoch", smoothing=0.5)
    for kind, figure in figures.items():
        validate(figure)
        colours: dict[str, set[str]] = {}
        for trace in figure["data"]:
            if trace["meta"]["role"] == "key":
                continue  # the grey line-style key
            colour = trace.get("line", trace.get("marker", {})).get("color")
            colours.setdefault(trace["legendgroup"], set()).add(colour)
        # One colour per run, the same in both charts: palette by position unless the run has
        # a valid colour of its own.
        assert colours == {
            "run-0": {RUN_PALETTE[0]},
            "run-1": {RUN_PALETTE[1]},
            "run-2": {"#123456"},
            "run-3": {RUN_PALETTE[3]},
        }, kind
        entries = [t["name"] for t in figure["data"] if t.get("showlegend", True)]
        assert entries[:4] == ["a", "b", "c", "d"]  # then the line-style key
        assert figure["layout"]["meta"]["runs"] == ["1", "2", "3", "4"]
        assert [s["x0"] for s in figure["layout"]["shapes"]] == [1.0, 2.0]  # shared on epochs
    loss = figures["loss"]
    first = [t for t in loss["data"] if t["legendgroup"] == "run-0"]
    assert [(t["name"], t["meta"]["role"]) for t in first] == [
        ("a", "smoothed"),
        ("train loss (raw)", "raw"),
        ("valid loss", "points"),
        ("full-valid loss", "points"),
        ("best full-valid loss", "best"),
    ]
    assert first[0]["hovertemplate"].startswith("<b>a</b><br>train loss")
    assert first[-1]["text"] == ["<b>a</b><br>best full-valid loss 0.5000 at step 20"]
    assert first[0]["y"] == ema([row[0] for row in first[0]["customdata"]], 0.5)
    assert loss["layout"]["title"]["text"] == "Loss — 4 runs"


def test_comparison_axis_falls_back_when_one_run_cannot_follow() -> None:
    bare = RunSeries(label="imported", train_loss=[(s, 1.0 / s) for s in range(1, 20)])
    figures = compare_figures([three_epochs(), bare], x_axis="tokens")
    assert figures["loss"]["layout"]["meta"]["x_axis"] == "step"
    assert figures["loss"]["layout"]["shapes"] == []
    assert compare_figures([], x_axis="step")["loss"]["data"] == []
