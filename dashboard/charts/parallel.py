"""A sweep's parallel-coordinates chart: one axis per hyperparameter the sweep varied, then the
runs' best full-validation loss, each run one line coloured by that loss (lower is better).
Text values (base models, schedules) get an axis of their own with their names as ticks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dashboard.charts.hyperparameters import hyperparameter_label
from dashboard.charts.series import finite_number
from dashboard.charts.text import escape_text

Figure = dict[str, Any]
METRIC = "best_full_valid_loss"
METRIC_LABEL = "Best full-valid loss"


def _dimension(key: str, values: list[Any]) -> dict[str, Any]:
    label = escape_text(hyperparameter_label(key))
    numbers = [finite_number(v) for v in values]
    if all(n is not None for n in numbers):
        return {"label": label, "values": numbers}
    names = sorted({str(v) for v in values})
    return {
        "label": label,
        "values": [names.index(str(v)) for v in values],
        "tickvals": list(range(len(names))),
        "ticktext": [escape_text(n) for n in names],
    }


def parallel_coordinates(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> Figure:
    """``rows``: one per run, with ``hyperparameters`` (key → value) and ``metrics`` (holding
    ``best_full_valid_loss``). Runs without that loss yet are left out and counted in
    ``layout.meta.excluded``; with fewer than two runs the figure says so instead."""
    scored = [r for r in rows if finite_number((r.get("metrics") or {}).get(METRIC)) is not None]
    excluded = len(rows) - len(scored)
    layout: dict[str, Any] = {
        "meta": {"excluded": excluded, "kind": "parallel"},
        "margin": {"l": 70, "r": 70, "t": 50, "b": 30},
    }
    if len(scored) < 2 or not keys:
        layout["annotations"] = [{
            "text": "Drawn once two runs have a full-validation loss.", "showarrow": False,
            "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
        }]  # fmt: skip
        layout["xaxis"] = layout["yaxis"] = {"visible": False}
        return {"data": [], "layout": layout}
    losses = [float((r["metrics"] or {})[METRIC]) for r in scored]
    dimensions = [
        _dimension(k, [(r.get("hyperparameters") or {}).get(k) for r in scored]) for k in keys
    ]
    dimensions.append({"label": METRIC_LABEL, "values": losses})
    trace = {
        "type": "parcoords",
        "line": {
            "color": losses,
            "colorscale": "Viridis",
            "reversescale": True,  # the best (lowest) loss is the brightest line
            "showscale": True,
            "colorbar": {"title": {"text": "loss"}},
        },
        "dimensions": dimensions,
    }
    return {"data": [trace], "layout": layout}
