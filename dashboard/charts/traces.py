"""Plotly trace dicts for one run's metric: raw + smoothed training lines, validation points,
checkpoint markers and the best validation point.

Contract with ``static/js/charts_common.js`` (every trace carries ``meta``):
* ``meta = {"run": <escaped run id>, "series": <metric column>, "role": <role>}`` with role
  ``"raw"`` (faint unsmoothed training line, no hover), ``"smoothed"`` (the training line
  users read), ``"points"`` (validation / full validation), ``"checkpoints"`` or ``"best"``;
* line and point traces carry ``customdata = [[raw y, step], …]``: a ``smoothed`` trace's
  ``y`` is ``ema(raw y, weight)``, so the page re-smooths with ``tuneboard.resmooth``
  (EMA over ``customdata[i][0]``) without asking the server, and hover shows the step on
  any x axis. Raw values are the downsampled points, so server and page smooth the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboard.charts.downsample import DEFAULT_BUDGET, downsample
from dashboard.charts.palette import BEST_COLOUR, CHECKPOINT_COLOUR
from dashboard.charts.series import METRIC_ALIASES, RunSeries, best_point
from dashboard.charts.smoothing import ema
from dashboard.charts.text import escape_text, format_number, format_step

Trace = dict[str, Any]

METRIC_LABELS: dict[str, str] = {
    "train_loss": "train loss",
    "valid_loss": "valid loss",
    "full_valid_loss": "full-valid loss",
    "train_accuracy": "train accuracy",
    "valid_accuracy": "valid accuracy",
    "full_valid_accuracy": "full-valid accuracy",
}
RAW_OPACITY = 0.3  # the unsmoothed line stays visible but recedes behind the smoothed one
_X_HOVER = {
    "step": "step %{x:,}",
    "epoch": "epoch %{x:.2f} · step %{customdata[1]:,}",
    "tokens": "%{x:,.0f} tokens · step %{customdata[1]:,}",
}


@dataclass(frozen=True)
class TraceStyle:
    """How one run's traces look and group. ``heading`` is escaped HTML shown first in every
    hover label (the run's name in comparisons, empty on a run's own page)."""

    colour: str
    legendgroup: str
    heading: str = ""


def _meta(run: RunSeries, metric: str, role: str) -> dict[str, str]:
    return {"run": escape_text(run.run_id), "series": metric, "role": role}


def _hover(style: TraceStyle, body: str, axis: str) -> str:
    return f"{style.heading}{body}<br>{_X_HOVER[axis]}<extra></extra>"


def _downsampled(run: RunSeries, metric: str, budget: int) -> tuple[list[float], list[float]]:
    points = run.metric(metric)
    if len(points) <= budget:
        # What downsample returns for a series that fits, without checking again every point
        # a RunSeries already holds clean (the stored curves always fit their page's budget).
        return [float(step) for step, _ in points], [value for _, value in points]
    return downsample([step for step, _ in points], [value for _, value in points], budget)


def _group(style: TraceStyle, trace: Trace) -> Trace:
    trace["legendgroup"] = style.legendgroup
    return trace


def train_traces(
    run: RunSeries,
    metric: str,
    *,
    axis: str,
    weight: float,
    style: TraceStyle,
    budget: int = DEFAULT_BUDGET,
) -> list[Trace]:
    """The faint raw line and the smoothed line (equal to it when weight is 0), sharing one
    legend entry: the raw one has none of its own and no hover."""
    steps, raw = _downsampled(run, metric, budget)
    if not steps:
        return []
    x = run.x_of(steps, axis)
    customdata = [[value, int(step)] for value, step in zip(raw, steps, strict=True)]
    label = METRIC_LABELS[metric]
    raw_trace: Trace = {
        "type": "scatter",
        "mode": "lines",
        "name": f"{label} (raw)",
        "x": x,
        "y": raw,
        "line": {"color": style.colour, "width": 1},
        "opacity": RAW_OPACITY,
        "hoverinfo": "skip",
        "showlegend": False,
        "meta": _meta(run, metric, "raw"),
    }
    smoothed_trace: Trace = {
        "type": "scatter",
        "mode": "lines",
        "name": label,
        "x": x,
        "y": ema(raw, weight),
        "customdata": customdata,
        "line": {"color": style.colour, "width": 2},
        "hovertemplate": _hover(style, f"{label} %{{y:.4f}} (raw %{{customdata[0]:.4f}})", axis),
        "meta": _meta(run, metric, "smoothed"),
    }
    # Smoothed first: a comparison titles a run's legend group on its first trace.
    return [_group(style, smoothed_trace), _group(style, raw_trace)]


def point_traces(
    run: RunSeries,
    metric: str,
    *,
    axis: str,
    style: TraceStyle,
    dash: str,
    symbol: str,
    budget: int = DEFAULT_BUDGET,
) -> list[Trace]:
    """Validation or full validation: its measured points joined by a line, never smoothed."""
    steps, values = _downsampled(run, metric, budget)
    if not steps:
        return []
    label = METRIC_LABELS[metric]
    trace: Trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": label,
        "x": run.x_of(steps, axis),
        "y": values,
        "customdata": [[value, int(step)] for value, step in zip(values, steps, strict=True)],
        "line": {"color": style.colour, "width": 1.5, "dash": dash},
        "marker": {"color": style.colour, "size": 6, "symbol": symbol},
        "hovertemplate": _hover(style, f"{label} %{{y:.4f}}", axis),
        "meta": _meta(run, metric, "points"),
    }
    return [_group(style, trace)]


def _checkpoint_y(run: RunSeries, step: int, metrics: dict[str, float], kind: str) -> float | None:
    # Sit the marker on the curve users compare checkpoints by: full validation first.
    for name in (f"full_valid_{kind}", f"valid_{kind}", f"train_{kind}"):
        value = run.value_at(name, step)
        if value is not None:
            return value
        for key, number in metrics.items():
            if METRIC_ALIASES.get(key) == name:
                return number
    return None


def _checkpoint_hover(model_id: str, step: int, metrics: dict[str, float]) -> str:
    lines = [
        f"<b>checkpoint {escape_text(model_id or '(unnamed)')}</b>",
        f"step {format_step(step)}",
    ]
    lines += [
        f"{escape_text(key)} {format_number(value)}"
        for key, value in sorted(metrics.items())
        if key != "step"  # OpenAI repeats the step as a float among the metrics
    ]
    return "<br>".join(lines)


def checkpoint_trace(run: RunSeries, *, kind: str, axis: str) -> list[Trace]:
    """Markers at the checkpoints (hover: model id and its metrics), on the loss or accuracy
    curve at that step; a checkpoint with no value of that kind to sit on is left out."""
    steps, ys, texts = [], [], []
    for mark in run.checkpoints:
        y = _checkpoint_y(run, mark.step, mark.metrics, kind)
        if y is None:
            continue
        steps.append(mark.step)
        ys.append(y)
        texts.append(_checkpoint_hover(mark.model_id, mark.step, mark.metrics))
    if not steps:
        return []
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": "checkpoints",
            "x": run.x_of(steps, axis),
            "y": ys,
            "text": texts,
            "hovertemplate": "%{text}<extra></extra>",
            # Filled white with a coloured outline: an open symbol is stroked with
            # marker.color, so a transparent one drew nothing, on the chart or in the legend.
            "marker": {
                "color": "#ffffff",
                "size": 12,
                "symbol": "diamond",
                "line": {"color": CHECKPOINT_COLOUR, "width": 2},
            },
            "meta": _meta(run, "checkpoints", "checkpoints"),
        }
    ]


def best_text(metric: str, value: float, step: int) -> str:
    label = METRIC_LABELS[metric]
    return f"best {label} {format_number(value)} at step {format_step(step)}"


def best_trace(run: RunSeries, *, kind: str, axis: str, style: TraceStyle | None) -> list[Trace]:
    """A star on the best full-validation point (validation when there is no full validation).
    On a run's page it is its own legend entry; in comparisons it joins the run's group."""
    best = best_point(run, "loss" if kind == "loss" else "accuracy")
    if best is None:
        return []
    heading = style.heading if style else ""
    trace: Trace = {
        "type": "scatter",
        "mode": "markers",
        "name": f"best {METRIC_LABELS[best.metric]}",
        "x": run.x_of([best.step], axis),
        "y": [best.value],
        "text": [heading + best_text(best.metric, best.value, best.step)],
        "hovertemplate": "%{text}<extra></extra>",
        "marker": {
            "color": style.colour if style else BEST_COLOUR,
            "size": 16,
            "symbol": "star",
            "line": {"color": "#ffffff", "width": 1},
        },
        "meta": _meta(run, best.metric, "best"),
    }
    if style is not None:
        trace["legendgroup"] = style.legendgroup
        trace["showlegend"] = False
    return [trace]
