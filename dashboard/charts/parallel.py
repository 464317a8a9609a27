"""A sweep's parallel-coordinates chart: one vertical axis per hyperparameter the sweep varied,
then the runs' best full-validation loss; each run is one line across them, coloured by that
loss (the brightest is the lowest) and drawn thicker for the best run.

Drawn with plain SVG line traces on axes scaled to 0–1 (each axis labelled with its own lowest
and highest value), not plotly's ``parcoords``: that one needs WebGL, which browsers without a
GPU lack, and its colour bar sets inline styles the Content-Security-Policy refuses. Text
values (base models, schedules) get their names along their axis; a multiplier or learning
rate tried over a factor of ten or more is spaced logarithmically."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboard.charts.hyperparameters import hyperparameter_label
from dashboard.charts.series import finite_number
from dashboard.charts.text import escape_text, format_number

Figure = dict[str, Any]
METRIC = "best_full_valid_loss"
METRIC_LABEL = "Best full-valid loss"
LOG_KEYS = frozenset({"learning_rate_multiplier", "learning_rate"})
# Viridis at five stops, reversed so that the lowest loss is the brightest line.
COLOURS = ((0.0, (253, 231, 37)), (0.25, (94, 201, 98)), (0.5, (33, 145, 140)),
           (0.75, (59, 82, 139)), (1.0, (68, 1, 84)))  # fmt: skip
PAD = 0.08


@dataclass(frozen=True)
class Axis:
    label: str
    positions: list[float]  # 0–1, one per run
    texts: list[str]  # each run's value as shown on hover
    ticks: list[tuple[float, str]]  # (position, text) written along the axis


def _colour(share: float) -> str:
    for (low, a), (high, b) in itertools.pairwise(COLOURS):
        if share <= high:
            t = 0.0 if high == low else (share - low) / (high - low)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
            return f"rgb({r},{g},{bl})"
    return "rgb(68,1,84)"


def _plain(value: float) -> str:
    """A hyperparameter as it was chosen: 2, 0.5, 1e-05."""
    return f"{value:.6g}"


def _scaled(values: list[float], log: bool) -> list[float]:
    points = [math.log10(v) for v in values] if log else values
    low, high = min(points), max(points)
    if high == low:
        return [0.5 for _ in points]
    return [(p - low) / (high - low) for p in points]


def _axis(key: str, values: list[Any]) -> Axis:
    label = escape_text(METRIC_LABEL if key == METRIC else hyperparameter_label(key))
    numbers = [finite_number(v) for v in values]
    if all(n is not None for n in numbers):
        floats = [float(n) for n in numbers if n is not None]
        log = key in LOG_KEYS and min(floats) > 0 and max(floats) / min(floats) >= 10
        positions = _scaled(floats, log)
        show = format_number if key == METRIC else _plain
        texts = [show(v) for v in floats]
        low, high = min(floats), max(floats)
        ticks = [(0.0, show(low)), (1.0, show(high))] if high > low else [(0.5, show(low))]
        return Axis(label, positions, texts, ticks)
    names = sorted({str(v) for v in values})
    place = {
        name: (i / (len(names) - 1) if len(names) > 1 else 0.5) for i, name in enumerate(names)
    }
    texts = [escape_text(str(v)) for v in values]
    return Axis(label, [place[str(v)] for v in values], texts,
                [(place[n], escape_text(n)) for n in names])  # fmt: skip


def _layout(axes: list[Axis], excluded: int) -> dict[str, Any]:
    annotations = []
    for x, axis in enumerate(axes):
        for position, text in axis.ticks:
            annotations.append({
                "x": x, "y": position, "text": text, "showarrow": False, "xanchor": "left",
                "xshift": 4, "font": {"size": 11},
            })  # fmt: skip
    return {
        "meta": {"excluded": excluded, "kind": "parallel"},
        "xaxis": {
            "tickvals": list(range(len(axes))),
            "ticktext": [a.label for a in axes],
            "side": "top",
            "range": [-0.2, len(axes) - 0.6],
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        },
        "yaxis": {"visible": False, "range": [-PAD, 1 + PAD], "fixedrange": True},
        "shapes": [
            {
                "type": "line",
                "x0": x,
                "x1": x,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#888", "width": 1},
            }
            for x in range(len(axes))
        ],
        "annotations": annotations,
        "showlegend": False,
        "hovermode": "closest",
        "margin": {"l": 30, "r": 30, "t": 60, "b": 20},
    }


def parallel_coordinates(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> Figure:
    """``rows``: one per run, with ``label``, ``hyperparameters`` (key → value) and ``metrics``
    (holding ``best_full_valid_loss``). Runs without that loss yet are left out and counted in
    ``layout.meta.excluded``; with fewer than two runs the figure says so instead."""
    scored = [r for r in rows if finite_number((r.get("metrics") or {}).get(METRIC)) is not None]
    excluded = len(rows) - len(scored)
    if len(scored) < 2 or not keys:
        return {"data": [], "layout": {
            "meta": {"excluded": excluded, "kind": "parallel"},
            "xaxis": {"visible": False}, "yaxis": {"visible": False},
            "annotations": [{"text": "Drawn once two runs have a full-validation loss.",
                             "showarrow": False, "xref": "paper", "yref": "paper",
                             "x": 0.5, "y": 0.5}],
        }}  # fmt: skip
    losses = [float((r.get("metrics") or {})[METRIC]) for r in scored]
    axes = [_axis(k, [(r.get("hyperparameters") or {}).get(k) for r in scored]) for k in keys]
    axes.append(_axis(METRIC, losses))
    shares = axes[-1].positions
    best = losses.index(min(losses))
    traces = []
    # The best run last, so that it is drawn over the others.
    for i in sorted(range(len(scored)), key=lambda i: i == best):
        label = escape_text(str(scored[i].get("label") or f"run {i + 1}"))
        traces.append({
            "type": "scatter", "mode": "lines+markers", "name": label,
            "x": list(range(len(axes))), "y": [a.positions[i] for a in axes],
            "line": {"color": _colour(shares[i]), "width": 4 if i == best else 2},
            "marker": {"size": 7 if i == best else 5, "color": _colour(shares[i])},
            "customdata": [f"{a.label}: {a.texts[i]}" for a in axes],
            "hovertemplate": f"<b>{label}</b><br>%{{customdata}}<extra></extra>",
            "meta": {"run": str(scored[i].get("run_id", "")), "best": i == best},
        })  # fmt: skip
    return {"data": traces, "layout": _layout(axes, excluded)}
