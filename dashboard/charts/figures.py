"""Loss and accuracy figures for one run and for a comparison of runs.

Figures are plain JSON-ready dicts (``{"data": [...], "layout": {...}}``) for
``Plotly.newPlot``: no NaN (missing values are dropped), no external resources, and every
string built from user content escaped (see ``dashboard.charts.text``). Traces follow the
``meta``/``customdata`` contract in ``dashboard.charts.traces`` so the page can re-smooth.
``log_y`` applies to the loss chart only: accuracy lives in [0, 1] where a log scale helps no one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboard.charts.describe import compare_description, run_description
from dashboard.charts.layout import chart_layout, compare_epoch_shapes, run_epoch_shapes
from dashboard.charts.palette import CHECKPOINT_COLOUR, SERIES_COLOURS, colours_for
from dashboard.charts.series import RunSeries, effective_x_axis
from dashboard.charts.text import escape_text
from dashboard.charts.traces import (
    Trace,
    TraceStyle,
    best_trace,
    checkpoint_trace,
    point_traces,
    train_traces,
)

Figure = dict[str, Any]
KINDS: tuple[str, ...] = ("loss", "accuracy")
# Line dash and marker per validation kind, shared by both builders so a legend reads the same.
VALID_LOOK = {"dash": "dot", "symbol": "circle"}
FULL_VALID_LOOK = {"dash": "dash", "symbol": "square"}
# The comparison's legend key: one grey entry per line style (series prefix, legend text, dash).
LINE_KEY: tuple[tuple[str, str, str], ...] = (
    ("train", "training (solid)", "solid"),
    ("valid", "validation (dotted)", VALID_LOOK["dash"]),
    ("full_valid", "full validation (dashed)", FULL_VALID_LOOK["dash"]),
)


def _check_weight(smoothing: float) -> float:
    if not 0 <= smoothing < 1:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    return float(smoothing)


def _metric_traces(
    run: RunSeries, kind: str, *, axis: str, weight: float, styles: dict[str, TraceStyle]
) -> list[Trace]:
    return [
        *train_traces(run, f"train_{kind}", axis=axis, weight=weight, style=styles["train"]),
        *point_traces(run, f"valid_{kind}", axis=axis, style=styles["valid"], **VALID_LOOK),
        *point_traces(
            run, f"full_valid_{kind}", axis=axis, style=styles["full_valid"], **FULL_VALID_LOOK
        ),
    ]


def _run_figure(run: RunSeries, kind: str, *, axis: str, log_y: bool, weight: float) -> Figure:
    styles = {
        name: TraceStyle(colour=colour, legendgroup=name) for name, colour in SERIES_COLOURS.items()
    }
    data = _metric_traces(run, kind, axis=axis, weight=weight, styles=styles)
    has_data = bool(data)
    data += checkpoint_trace(run, kind=kind, axis=axis)
    data += best_trace(run, kind=kind, axis=axis, style=None)
    layout = chart_layout(
        title=f"{kind.capitalize()} — {escape_text(run.label)}",
        y_title=kind,
        axis=axis,
        log_y=log_y and kind == "loss",
        meta={
            "chart": kind,
            "x_axis": axis,
            "smoothing": weight,
            "runs": [escape_text(run.run_id)],
            "description": escape_text(run_description(run, kind, axis)),
        },
        empty_text=None if has_data else f"No {kind} metrics yet.",
    )
    layout["shapes"] = run_epoch_shapes(run, axis)
    return {"data": data, "layout": layout}


def run_figures(
    run: RunSeries, *, x_axis: str = "step", log_y: bool = False, smoothing: float = 0.0
) -> dict[str, Figure]:
    """``{"loss": figure, "accuracy": figure}`` for one run's page.

    Training: a faint raw line under a line smoothed with ``smoothing`` (TensorBoard's EMA;
    identical to the raw one at 0). Validation and full validation: their points joined by
    lines, never smoothed. Epoch boundaries are dotted vertical lines, checkpoints white
    diamonds (hover: model id and metrics), the best full-validation point a star. An x axis
    the run cannot provide (epoch without steps per epoch, tokens without trained tokens)
    falls back to steps; ``layout.meta.x_axis`` says which was used.
    """
    weight = _check_weight(smoothing)
    axis = effective_x_axis([run], x_axis)
    return {kind: _run_figure(run, kind, axis=axis, log_y=log_y, weight=weight) for kind in KINDS}


def _line_key(kind: str, drawn: set[str]) -> list[Trace]:
    """Legend-only traces naming the line styles of the series the chart draws (a run's
    colour says which run, its dash which series). ``meta.key`` names that series so the
    page's legend click can toggle it in every run; its ``meta.series`` is ``"key"``, not that
    series: it holds no data of it."""
    return [
        {
            "type": "scatter",
            "mode": "lines",
            "name": text,
            "x": [None],
            "y": [None],
            "line": {"color": CHECKPOINT_COLOUR, "width": 2, "dash": dash},
            "hoverinfo": "skip",
            "legendgroup": "key",
            "meta": {"series": "key", "key": f"{prefix}_{kind}", "role": "key"},
        }
        for prefix, text, dash in LINE_KEY
        if f"{prefix}_{kind}" in drawn
    ]


def _compare_figure(
    runs: Sequence[RunSeries], kind: str, *, axis: str, log_y: bool, weight: float
) -> Figure:
    data: list[Trace] = []
    for position, (run, colour) in enumerate(zip(runs, colours_for(runs), strict=True)):
        label = escape_text(run.label)
        style = TraceStyle(
            colour=colour, legendgroup=f"run-{position}", heading=f"<b>{label}</b><br>"
        )
        traces = _metric_traces(
            run, kind, axis=axis, weight=weight, styles=dict.fromkeys(SERIES_COLOURS, style)
        )
        # One legend entry per run, named after it: its first line stands for all of them.
        for index, trace in enumerate(traces):
            trace["showlegend"] = index == 0
        if traces:
            traces[0]["name"] = label
        data += traces + best_trace(run, kind=kind, axis=axis, style=style)
    drawn = {trace["meta"]["series"] for trace in data}
    has_data = bool(data)
    data += _line_key(kind, drawn)
    layout = chart_layout(
        title=f"{kind.capitalize()} — {len(runs)} runs",
        y_title=kind,
        axis=axis,
        log_y=log_y and kind == "loss",
        meta={
            "chart": kind,
            "x_axis": axis,
            "smoothing": weight,
            "runs": [escape_text(run.run_id) for run in runs],
            "description": escape_text(compare_description(runs, kind, axis)),
        },
        empty_text=None if has_data else f"No {kind} metrics yet.",
    )
    layout["shapes"] = compare_epoch_shapes(list(runs), axis)
    return {"data": data, "layout": layout}


def compare_figures(
    runs: Sequence[RunSeries],
    *,
    x_axis: str = "step",
    log_y: bool = False,
    smoothing: float = 0.0,
) -> dict[str, Figure]:
    """``{"loss": figure, "accuracy": figure}`` overlaying several runs.

    Each run keeps one colour (``palette.colours_for``: by position) in both figures and has
    one legend entry, its name, standing for its legend group; within it training is solid
    (plus its faint raw line), validation dotted with circles, full validation dashed with
    squares, and its best validation point a star. Grey legend-only entries at the end name
    the line styles. The x axis falls back to steps unless every run supports
    the one asked for.
    """
    weight = _check_weight(smoothing)
    axis = effective_x_axis(runs, x_axis)
    return {
        kind: _compare_figure(runs, kind, axis=axis, log_y=log_y, weight=weight) for kind in KINDS
    }
