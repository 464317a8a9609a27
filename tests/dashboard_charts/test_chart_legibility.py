"""What a reader of the charts relies on: every legend entry has a visible symbol, the legend
does not sit on the x-axis title, empty charts invent no axes, a comparison has one legend
entry (and one colour) per run with line styles telling the series apart, and the scatters
plot only hyperparameters that mean something, under readable names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from dashboard.charts import (
    RUN_PALETTE,
    RunSeries,
    compare_figures,
    plotted_parameters,
    run_figures,
    scatter_best_vs_hyperparameter,
)
from dashboard.charts.palette import CHECKPOINT_COLOUR

from .test_figures import three_epochs, validate

TRANSPARENT = re.compile(r"rgba\([^)]*,\s*0(\.0*)?\)|transparent", re.I)


def legend_entries(figure: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in figure["data"] if t.get("showlegend", True)]


def test_checkpoint_markers_are_drawn_in_a_visible_colour() -> None:
    for kind, figure in run_figures(three_epochs()).items():
        (checkpoints,) = [t for t in figure["data"] if t["meta"]["role"] == "checkpoints"]
        marker = checkpoints["marker"]
        # An open symbol is stroked with marker.color: transparent, it draws nothing at all
        # (neither on the chart nor in the legend). A filled diamond with an outline shows.
        assert not marker["symbol"].endswith("-open"), kind
        assert marker["symbol"] == "diamond"
        assert not TRANSPARENT.fullmatch(marker["color"]) and marker["color"].startswith("#")
        assert marker["line"] == {"color": CHECKPOINT_COLOUR, "width": 2}
        assert checkpoints.get("showlegend", True) and checkpoints["mode"] == "markers"


@pytest.mark.parametrize("builder", ["run", "compare"])
def test_legend_sits_below_the_axis_title_not_on_it(builder: str) -> None:
    run = three_epochs()
    figures = run_figures(run) if builder == "run" else compare_figures([run, three_epochs()])
    for figure in figures.values():
        layout = figure["layout"]
        # Anchored to the bottom of the whole figure, the legend reserves its own margin; the
        # x-axis title (automargin) is placed above that margin instead of under the legend.
        assert layout["legend"]["yref"] == "container"
        assert (layout["legend"]["y"], layout["legend"]["yanchor"]) == (0, "bottom")
        assert layout["xaxis"]["automargin"] is True
        assert layout["height"] >= 420


def test_empty_charts_draw_no_invented_axes() -> None:
    for figures in (
        run_figures(RunSeries(label="new run", total_steps=300)),
        compare_figures([RunSeries(label="a"), RunSeries(label="b")]),
    ):
        for kind, figure in figures.items():
            validate(figure)
            layout = figure["layout"]
            assert figure["data"] == []
            # Plotly draws an axis without data from -1 to 6; hidden, only the message shows.
            assert layout["xaxis"]["visible"] is False and layout["yaxis"]["visible"] is False
            assert layout["annotations"][0]["text"] == f"No {kind} metrics yet."
            assert layout["showlegend"] is False


def test_a_chart_with_data_keeps_its_axes() -> None:
    layout = run_figures(three_epochs())["loss"]["layout"]
    assert layout["xaxis"].get("visible", True) and layout["yaxis"].get("visible", True)
    assert layout["annotations"] == []


def test_comparison_has_one_legend_entry_per_run_and_a_line_style_key() -> None:
    runs = [
        three_epochs(label="a", run_id="1"),
        three_epochs(label="b", run_id="2"),
        RunSeries(label="train only", run_id="3", train_loss=[(s, 1 / s) for s in range(1, 9)]),
    ]
    figures = compare_figures(runs)
    loss = figures["loss"]
    validate(loss)
    entries = legend_entries(loss)
    by_run = [t for t in entries if t["meta"]["role"] != "key"]
    assert [(t["name"], t["legendgroup"]) for t in by_run] == [
        ("a", "run-0"),
        ("b", "run-1"),
        ("train only", "run-2"),
    ]
    assert [t["line"]["color"] for t in by_run] == list(RUN_PALETTE[:3])
    assert not [t for t in loss["data"] if "legendgrouptitle" in t]
    # Within a run, the line style says which series a line is, and the key says so too.
    style = {
        (t["legendgroup"], t["meta"]["series"]): t["line"].get("dash", "solid")
        for t in loss["data"]
        if t["meta"]["role"] in ("smoothed", "points")
    }
    for group in ("run-0", "run-1"):
        assert style[(group, "train_loss")] == "solid"
        assert style[(group, "valid_loss")] == "dot"
        assert style[(group, "full_valid_loss")] == "dash"
    key = [t for t in entries if t["meta"]["role"] == "key"]
    assert [(t["name"], t["line"]["dash"], t["meta"]["key"]) for t in key] == [
        ("training (solid)", "solid", "train_loss"),
        ("validation (dotted)", "dot", "valid_loss"),
        ("full validation (dashed)", "dash", "full_valid_loss"),
    ]
    assert all(t["x"] == [None] and t["hoverinfo"] == "skip" for t in key)
    # The key follows the data: no run has valid accuracy, so no "validation" key there.
    accuracy_key = [t["name"] for t in figures["accuracy"]["data"] if t["meta"]["role"] == "key"]
    assert accuracy_key == ["training (solid)", "full validation (dashed)"]
    # The smoothed lines stay the first trace of each run (the page re-smooths by role).
    assert [i for i, t in enumerate(loss["data"]) if t["meta"]["role"] == "smoothed"] == [0, 5, 10]


def test_comparison_traces_stay_in_their_run_group() -> None:
    loss = compare_figures([three_epochs(label="a"), three_epochs(label="b")])["loss"]
    for trace in loss["data"]:
        if trace["meta"]["role"] == "key":
            assert trace["legendgroup"] == "key"
        else:
            assert trace["legendgroup"] in ("run-0", "run-1")
            colour = trace.get("line", trace.get("marker", {})).get("color")
            assert colour == RUN_PALETTE[int(trace["legendgroup"][-1])]


def rows(*hyperparameters: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "label": f"run {i}",
            "hyperparameters": hp,
            "metrics": {"best_full_valid_loss": 0.5 + i / 10, "best_valid_loss": None},
        }
        for i, hp in enumerate(hyperparameters)
    ]


def test_only_varying_numeric_meaningful_hyperparameters_are_plotted() -> None:
    table = rows(
        {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 0.5, "seed": 1,
         "beta": "auto", "eval_interval": 5, "method": "dpo", "base_model": "m1"},
        {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 1.8, "seed": 2,
         "beta": "auto", "eval_interval": 10, "method": "dpo", "base_model": "m2"},
        {"n_epochs": 3, "batch_size": "auto", "learning_rate_multiplier": 1.8, "seed": 3,
         "beta": 0.1, "eval_interval": 1, "method": "dpo", "base_model": "m3"},
    )  # fmt: skip
    # n_epochs does not vary; seed, eval_interval (not a training knob), method and base
    # model are never plotted; beta has one numeric value only.
    assert plotted_parameters(table) == ["batch_size", "learning_rate_multiplier"]
    assert plotted_parameters(rows({"seed": 1}, {"seed": 2})) == []
    assert (
        plotted_parameters(rows({"n_epochs": True}, {"n_epochs": 3})) == []
    )  # a bool is no number
    assert plotted_parameters(rows({"beta": 0.1}, {"beta": 0.2})) == ["beta"]


@pytest.mark.parametrize(
    ("parameter", "label"),
    [
        ("learning_rate_multiplier", "Learning-rate multiplier"),
        ("batch_size", "Batch size"),
        ("n_epochs", "Epochs"),
        ("beta", "β (DPO)"),
    ],
)
def test_scatter_labels_are_readable(parameter: str, label: str) -> None:
    table = rows({parameter: 1}, {parameter: 2})
    figure = scatter_best_vs_hyperparameter(table, parameter)
    validate(figure)
    layout = figure["layout"]
    assert layout["xaxis"]["title"]["text"] == label
    assert layout["title"]["text"] == f"Best validation loss vs {label}"
    assert layout["meta"]["parameter"] == parameter  # the key, for the page and the tests
    assert layout["xaxis"]["automargin"] and layout["yaxis"]["automargin"]
    (points,) = figure["data"]
    # Run names next to their points are never cut off at the plot's edge.
    assert points["cliponaxis"] is False and points["textposition"] == "top center"
    assert f"<br>{label} %{{x}}<br>" in points["hovertemplate"]
    whole = parameter in ("batch_size", "n_epochs")
    assert layout["xaxis"].get("tickvals") == ([1.0, 2.0] if whole else None)
