"""Best validation loss of each run against one hyperparameter (compare page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dashboard.charts.hyperparameters import hyperparameter_label
from dashboard.charts.palette import safe_colour
from dashboard.charts.series import finite_number
from dashboard.charts.text import escape_text

Figure = dict[str, Any]
LOG_X_PARAMETERS = frozenset({"learning_rate_multiplier"})  # tried in multiples, not steps
# Counted in whole numbers: ticks only at the values the runs used (no "batch size 2.5").
WHOLE_NUMBER_PARAMETERS = frozenset({"n_epochs", "batch_size"})
# (metrics key, legend, marker): full validation first, the mini-batch fallback open.
_KINDS = (
    ("best_full_valid_loss", "best full-valid loss", "circle"),
    ("best_valid_loss", "best valid loss (no full validation)", "circle-open"),
)


def _loss(row: Mapping[str, Any]) -> tuple[str, float] | None:
    metrics = row.get("metrics") or {}
    for key, _, _ in _KINDS:
        value = finite_number(metrics.get(key))
        if value is not None:
            return key, value
    return None


def _trace(
    key: str, legend: str, symbol: str, name: str, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "type": "scatter",
        "mode": "markers+text",
        "name": legend,
        "x": [row["x"] for row in rows],
        "y": [row["y"] for row in rows],
        "text": [row["label"] for row in rows],
        "textposition": "top center",
        "cliponaxis": False,  # a name next to a point at the edge is not cut off
        "marker": {"color": [row["colour"] for row in rows], "size": 11, "symbol": symbol},
        "hovertemplate": f"<b>%{{text}}</b><br>{name} %{{x}}<br>{legend} %{{y:.4f}}<extra></extra>",
        "meta": {"series": key, "role": "best"},
    }


def scatter_best_vs_hyperparameter(runs: Sequence[Mapping[str, Any]], parameter: str) -> Figure:
    """One labelled point per run: x = ``hyperparameters[parameter]``, y = best full-validation
    loss (``metrics["best_full_valid_loss"]``), falling back to the best mini-batch validation
    loss (open markers). Rows have the shape of ``export.comparison_rows``: ``label``,
    ``colour`` (optional; palette by position otherwise), ``hyperparameters``, ``metrics``.
    Runs without a numeric value (e.g. ``"auto"``) or without validation are left out and
    named in ``layout.meta.excluded``. The learning-rate multiplier gets a log x axis.
    """
    name = escape_text(hyperparameter_label(parameter))
    log_x = parameter in LOG_X_PARAMETERS
    by_kind: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in _KINDS}
    excluded: list[str] = []
    for position, row in enumerate(runs):
        label = escape_text(row.get("label", ""))
        x = finite_number((row.get("hyperparameters") or {}).get(parameter))
        loss = _loss(row)
        if x is None or loss is None or (log_x and x <= 0):
            excluded.append(label)
            continue
        colour = safe_colour(row.get("colour"), position)
        by_kind[loss[0]].append({"x": x, "y": loss[1], "label": label, "colour": colour})
    data = [
        _trace(key, legend, symbol, name, by_kind[key])
        for key, legend, symbol in _KINDS
        if by_kind[key]
    ]
    plotted = sum(len(rows) for rows in by_kind.values())
    description = f"Best validation loss of {plotted} runs against {name}"
    if excluded:
        description += f"; left out (no numeric {name} or no validation): {', '.join(excluded)}"
    layout: dict[str, Any] = {
        "title": {"text": f"Best validation loss vs {name}", "x": 0, "xanchor": "left"},
        "meta": {
            "chart": "scatter",
            "parameter": escape_text(parameter),
            "excluded": excluded,
            "description": description + ".",
        },
        "xaxis": {
            "title": {"text": name},
            "type": "log" if log_x else "linear",
            "automargin": True,
        },
        "yaxis": {"title": {"text": "best validation loss"}, "automargin": True},
        "hovermode": "closest",
        "showlegend": len(data) > 1,
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
        "margin": {"l": 60, "r": 30, "t": 60, "b": 40},
        "height": 380,
        "annotations": [],
    }
    if parameter in WHOLE_NUMBER_PARAMETERS and data:
        layout["xaxis"]["tickvals"] = sorted({x for trace in data for x in trace["x"]})
    if not data:
        layout["annotations"].append(
            {
                "text": f"No run has both a numeric {name} and a validation loss.",
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
            }
        )
    return {"data": data, "layout": layout}
