"""Plotly layout dicts shared by the run and comparison charts."""

from __future__ import annotations

from typing import Any

from dashboard.charts.describe import AXIS_TITLES
from dashboard.charts.palette import EPOCH_LINE_COLOUR
from dashboard.charts.series import RunSeries

Layout = dict[str, Any]
CHART_HEIGHT = 440  # px: room for the curves above a legend of up to three rows


def chart_layout(
    *,
    title: str,
    y_title: str,
    axis: str,
    log_y: bool,
    meta: dict[str, Any],
    empty_text: str | None = None,
) -> Layout:
    """``title`` and every string in ``meta`` must already be escaped."""
    layout: Layout = {
        "title": {"text": title, "x": 0, "xanchor": "left"},
        "meta": meta,
        "xaxis": {"title": {"text": AXIS_TITLES[axis]}, "zeroline": False, "automargin": True},
        "yaxis": {
            "title": {"text": y_title},
            "type": "log" if log_y else "linear",
            "automargin": True,
        },
        "hovermode": "closest",
        # A click toggles a whole legend group: a training line with its faint raw line, or
        # every trace of one run in a comparison (per-series toggles: tuneboard.showSeries).
        # Anchored to the bottom of the figure the legend reserves a margin of its own, and the
        # x-axis title goes above it; placed relative to the plot it covered that title.
        "legend": {
            "orientation": "h",
            "yref": "container",
            "y": 0,
            "yanchor": "bottom",
            "groupclick": "togglegroup",
        },
        "margin": {"l": 60, "r": 20, "t": 50, "b": 20},
        "height": CHART_HEIGHT,
        # Keeps zoom and hidden series across live refreshes until the axis itself changes.
        "uirevision": f"{meta.get('chart', '')}:{axis}:{log_y}",
        "shapes": [],
        "annotations": [],
    }
    if empty_text is not None:
        # Plotly draws axes without data from -1 to 6: numbers that mean nothing. Hidden, the
        # chart is only the message (the first points bring new figures with real axes).
        layout["xaxis"]["visible"] = False
        layout["yaxis"]["visible"] = False
        layout["showlegend"] = False
        layout["hovermode"] = False
        layout["uirevision"] += ":empty"
        layout["annotations"].append(
            {
                "text": empty_text,
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 14},
            }
        )
    return layout


def epoch_line(x: float) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": "x",
        "yref": "paper",
        "x0": x,
        "x1": x,
        "y0": 0,
        "y1": 1,
        "layer": "below",
        "line": {"color": EPOCH_LINE_COLOUR, "width": 1, "dash": "dot"},
    }


def run_epoch_shapes(run: RunSeries, axis: str) -> list[dict[str, Any]]:
    """Vertical lines between epochs (the last epoch end is the chart's right edge)."""
    end = run.end_step
    boundaries = [step for step in run.epoch_end_steps() if end is None or step < end]
    return [epoch_line(x) for x in run.x_of(boundaries, axis)]


def compare_epoch_shapes(runs: list[RunSeries], axis: str) -> list[dict[str, Any]]:
    """On the epoch axis every run's epochs end at whole numbers, so the lines are shared;
    on steps or tokens they differ per run and would only add clutter."""
    if axis != "epoch":
        return []
    epochs = max((run.n_epochs or 0 for run in runs), default=0)
    return [epoch_line(float(epoch)) for epoch in range(1, epochs)]


def guardrail_marks(
    run: RunSeries, axis: str, firings: list[tuple[int, str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A dotted red line and a label at each step where a guardrail fired: (shapes,
    annotations) for a run's figure."""
    shapes, annotations = [], []
    for (step, label), x in zip(firings, run.x_of([s for s, _ in firings], axis), strict=True):
        shapes.append(
            {
                "type": "line", "xref": "x", "yref": "paper", "x0": x, "x1": x, "y0": 0, "y1": 1,
                "line": {"color": "#b42318", "width": 1.5, "dash": "dot"}, "layer": "above",
                "name": f"guardrail at step {step}",
            }
        )  # fmt: skip
        annotations.append(
            {
                "x": x, "xref": "x", "y": 1, "yref": "paper", "yanchor": "bottom",
                "text": label, "showarrow": False, "font": {"size": 11, "color": "#b42318"},
            }
        )  # fmt: skip
    return shapes, annotations
