"""Downloads: a run's metric points as CSV or JSON, and the compare page's tables as CSV.

Inputs are plain rows as ``MetricPoint.objects.values(...)`` gives them:
``{"step": int, "train_loss": float | None, …, "extra": {key: float}}``.

Cells are written so a spreadsheet cannot mistake text for a formula: a text cell starting
with ``= + - @``, a tab or a carriage return gets a leading apostrophe (OWASP's advice for CSV
injection); numbers are written as numbers (repr: shortest exact round trip).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dashboard.charts.palette import colours_for
from dashboard.charts.series import (
    SUMMARY_METRICS,
    RunSeries,
    finite_number,
    summary_metrics,
)

MetricRow = Mapping[str, Any]
# OpenAI's results-file order (step_metrics.csv), with the dashboard's column names.
EXPORT_METRICS: tuple[str, ...] = (
    "train_loss",
    "train_accuracy",
    "valid_loss",
    "valid_accuracy",
    "full_valid_loss",
    "full_valid_accuracy",
)
COLUMNS: tuple[str, ...] = ("step", *EXPORT_METRICS)
# Known hyperparameters first, in the order people read them; others follow alphabetically.
HYPERPARAMETER_ORDER: tuple[str, ...] = (
    "n_epochs",
    "batch_size",
    "learning_rate_multiplier",
    "beta",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        number = finite_number(value)
        return "" if number is None else repr(number)
    if not isinstance(value, str):
        value = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_cell(name) for name in header])
    writer.writerows([_cell(value) for value in row] for row in rows)
    return buffer.getvalue()


def _valid_rows(rows: Iterable[MetricRow]) -> list[MetricRow]:
    kept = [row for row in rows if finite_number(row.get("step")) is not None]
    return sorted(kept, key=lambda row: int(row["step"]))


def _extra_keys(rows: Sequence[MetricRow]) -> list[str]:
    return sorted({str(key) for row in rows for key in (row.get("extra") or {})})


def _extra_header(key: str) -> str:
    # An extra key spelled like a column must not produce two columns of the same name.
    return f"extra:{key}" if key in COLUMNS else key


def metrics_csv(rows: Iterable[MetricRow]) -> str:
    """Every point, sorted by step: ``step``, the six metric columns in OpenAI's order, then
    every ``extra`` key seen in any row, sorted; empty cells where a value is missing."""
    points = _valid_rows(rows)
    extras = _extra_keys(points)
    header = [*COLUMNS, *(_extra_header(key) for key in extras)]
    body = (
        [
            int(row["step"]),
            *(finite_number(row.get(name)) for name in EXPORT_METRICS),
            *(finite_number((row.get("extra") or {}).get(key)) for key in extras),
        ]
        for row in points
    )
    return _csv(header, body)


def metrics_json(rows: Iterable[MetricRow]) -> list[dict[str, Any]]:
    """Every point, sorted by step, as ``{"step", <six columns: float | None>, "extra": {…}}``;
    non-finite values become None so the result is strict JSON."""
    return [
        {
            "step": int(row["step"]),
            **{name: finite_number(row.get(name)) for name in EXPORT_METRICS},
            "extra": {
                str(key): finite_number(value)
                for key, value in sorted((row.get("extra") or {}).items())
            },
        }
        for row in _valid_rows(rows)
    ]


def comparison_rows(runs: Sequence[RunSeries]) -> list[dict[str, Any]]:
    """One plain row per run for the compare page: ``label``, ``id``, ``colour`` (the colour
    its curves have), ``hyperparameters`` and ``metrics`` (``series.summary_metrics``). The
    input of ``comparison_table``, ``comparison_tables_csv`` and the hyperparameter scatter."""
    return [
        {
            "label": run.label,
            "id": run.run_id,
            "colour": colour,
            "hyperparameters": dict(run.hyperparameters),
            "metrics": summary_metrics(run),
        }
        for run, colour in zip(runs, colours_for(runs), strict=True)
    ]


def _hyperparameter_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = {str(key) for row in rows for key in (row.get("hyperparameters") or {})}
    known = [key for key in HYPERPARAMETER_ORDER if key in seen]
    return known + sorted(seen - set(known))


def _metric_keys(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    seen = {str(key) for row in rows for key in (row.get("metrics") or {})}
    known = [key for key in SUMMARY_METRICS if key in seen]
    return known + sorted(seen - set(known))


def comparison_table(rows: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """Header and raw values, one row per run: ``run``, ``run_id``, ``status`` (when the rows
    carry one), the hyperparameters (known ones first) then the metrics (``SUMMARY_METRICS`` order); a hyperparameter named like a
    metric is headed ``hyperparameter:<name>``. Missing values are None."""
    hyper_keys, metric_keys = _hyperparameter_keys(rows), _metric_keys(rows)
    # With the runs' statuses, a ``status`` column tells final values from the latest ones of
    # a run still going (the ``final_*`` metrics are each run's last reported value).
    status = ["status"] if any("status" in row for row in rows) else []
    header = [
        "run",
        "run_id",
        *status,
        *(f"hyperparameter:{key}" if key in metric_keys else key for key in hyper_keys),
        *metric_keys,
    ]
    body = [
        [
            row.get("label", ""),
            row.get("id", ""),
            *([row.get("status", "")] if status else []),
            *((row.get("hyperparameters") or {}).get(key) for key in hyper_keys),
            *((row.get("metrics") or {}).get(key) for key in metric_keys),
        ]
        for row in rows
    ]
    return header, body


def comparison_tables_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The compare page's hyperparameter and metric tables as one CSV, one line per run."""
    header, body = comparison_table(rows)
    return _csv(header, body)
