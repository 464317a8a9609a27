"""Plotly layout dicts shared by the run and comparison charts."""

from __future__ import annotations

from typing import Any

from dashboard.charts.describe import AXIS_TITLES
from dashboard.charts.palette import EPOCH_LINE_COLOUR
from dashboard.charts.series import RunSeries

Layout = dict[str, Any]


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
        "xaxis": {"title": {"text": AXIS_TITLES[axis]}, "zeroline": False},
        "yaxis": {"title": {"text": y_title}, "type": "log" if log_y else "linear"},
        "hovermode": "closest",
        # A click toggles a whole legend group: a training line with its faint raw line, or
        # every trace of one run in a comparison (per-series toggles: tuneboard.showSeries).
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.18, "groupclick": "togglegroup"},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "height": 380,
        # Keeps zoom and hidden series across live refreshes until the axis itself changes.
        "uirevision": f"{meta.get('chart', '')}:{axis}:{log_y}",
        "shapes": [],
        "annotations": [],
    }
    if empty_text is not None:
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
