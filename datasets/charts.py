"""Plotly figures (plain JSON-ready dicts) for the dataset page, built from the report's
exact distributions, each with a text alternative."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from datasets.validation import Distribution, Report

BAR_COLOR = "#3156d3"
LIMIT_COLOR = "#c53030"
# Drawing a context limit far beyond the data would squash every bar against the left edge;
# past this factor the limit is named in a note instead.
LIMIT_MAX_STRETCH = 4


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    figure: dict[str, Any]
    description: str
    rows: list[tuple[str, int]]  # (bucket label, examples) for the data table

    @property
    def data_id(self) -> str:
        return f"{self.id}-data"


def histogram_figure(
    dist: Distribution, *, x_title: str, limit: int | None = None
) -> dict[str, Any]:
    hist = dist.histogram()
    edges, counts = hist["edges"], hist["counts"]
    widths = [b - a for a, b in pairwise(edges)]
    single = bool(widths) and widths[0] == 1  # one value per bar: label it by that value
    if single:
        x: list[float] = [float(e) for e in edges[:-1]]
        bar_widths: list[float] = [0.9] * len(counts)
    else:
        x = [(a + b) / 2 for a, b in pairwise(edges)]
        bar_widths = [float(w) for w in widths]
    bar = {
        "type": "bar",
        "x": x,
        "y": counts,
        "width": bar_widths,
        "marker": {"color": BAR_COLOR},
        "customdata": [[a, b - 1] for a, b in pairwise(edges)],
        "hovertemplate": (
            "%{x}: %{y} examples<extra></extra>"
            if single
            else "%{customdata[0]}–%{customdata[1]}: %{y} examples<extra></extra>"
        ),
        "name": x_title,
    }
    layout: dict[str, Any] = {
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": "examples"}, "rangemode": "tozero"},
        "bargap": 0.05,
        "height": 300,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 50},
        "showlegend": False,
        "shapes": [],
        "annotations": [],
    }
    if limit is not None and edges:
        top = edges[-1]
        if limit <= top * LIMIT_MAX_STRETCH:
            layout["shapes"].append(
                {
                    "type": "line",
                    "xref": "x",
                    "yref": "paper",
                    "x0": limit,
                    "x1": limit,
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": LIMIT_COLOR, "width": 2, "dash": "dash"},
                }
            )
            layout["xaxis"]["range"] = [edges[0], max(top, limit) * 1.03]
            note = f"training context {limit:,}"
            layout["annotations"].append(
                {
                    "x": limit,
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "text": note,
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "bottom",
                    "font": {"color": LIMIT_COLOR},
                }
            )
        else:
            layout["annotations"].append(
                {
                    "x": 1,
                    "y": 1,
                    "xref": "paper",
                    "yref": "paper",
                    "text": f"training context {limit:,} →",
                    "showarrow": False,
                    "xanchor": "right",
                    "yanchor": "bottom",
                    "font": {"color": LIMIT_COLOR},
                }
            )
    return {"data": [bar], "layout": layout}


def _rows(dist: Distribution) -> list[tuple[str, int]]:
    hist = dist.histogram()
    edges, counts = hist["edges"], hist["counts"]
    rows = []
    for (a, b), count in zip(pairwise(edges), counts, strict=True):
        rows.append((f"{a:,}" if b - a == 1 else f"{a:,}–{b - 1:,}", count))
    return rows


def _describe(title: str, dist: Distribution, limit: int | None) -> str:
    s = dist.summary()
    if not s["n"]:
        return f"{title}: no examples."
    text = (
        f"{title}: {s['n']:,} examples, min {s['min']:,}, median {s['median']:,.0f}, "
        f"max {s['max']:,}"
    )
    if limit is not None:
        over = dist.count_above(limit)
        text += f"; training context {limit:,} tokens, {over:,} examples above it"
    return text + "."


def report_charts(report: Report, context_limit: int | None) -> list[Chart]:
    specs = [
        ("chart-total", "Tokens per example", report.tokens.total, "tokens", context_limit),
        (
            "chart-trained",
            "Trained (assistant) tokens per example",
            report.tokens.trained,
            "trained tokens",
            context_limit,
        ),
        ("chart-messages", "Messages per example", report.tokens.messages, "messages", None),
    ]
    charts = []
    for chart_id, title, dist, x_title, limit in specs:
        if not dist.counts:
            continue
        charts.append(
            Chart(
                id=chart_id,
                title=title,
                figure=histogram_figure(dist, x_title=x_title, limit=limit),
                description=_describe(title, dist, limit),
                rows=_rows(dist),
            )
        )
    return charts
