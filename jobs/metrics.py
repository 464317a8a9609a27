"""Metric rows from the two places providers report them: metrics events (names like
`train_mean_token_accuracy`) and the results CSV (`train_accuracy`, empty cells). Every numeric
key is kept: known ones as columns, the rest in `extra`."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, transaction

from jobs import curvestore, storable
from jobs.models import METRIC_COLUMNS

COLUMNS = METRIC_COLUMNS
ALIASES = {
    "train_loss": "train_loss",
    "train_mean_token_accuracy": "train_accuracy",
    "train_accuracy": "train_accuracy",
    "valid_loss": "valid_loss",
    "valid_mean_token_accuracy": "valid_accuracy",
    "valid_accuracy": "valid_accuracy",
    "full_valid_loss": "full_valid_loss",
    "full_valid_mean_token_accuracy": "full_valid_accuracy",
    "full_valid_accuracy": "full_valid_accuracy",
}
NOT_METRICS = frozenset({"step", "total_steps", "epoch"})
STEP_RANGE = (0, 2**31 - 1)

Row = dict[str, Any]  # {"step": int, column: float | None, "extra": {key: float}}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def row_from_mapping(data: Mapping[str, Any]) -> Row | None:
    step = _number(data.get("step"))
    # The step column is a 32-bit integer: a step beyond it is no step of a real run.
    if step is None or not STEP_RANGE[0] <= step <= STEP_RANGE[1]:
        return None
    row: Row = {"step": int(step), "extra": {}}
    for key, value in data.items():
        if key in NOT_METRICS:
            continue
        number = _number(value)
        if number is None:
            continue
        column = ALIASES.get(key)
        if column:
            row[column] = number
        else:
            row["extra"][storable.text(key)] = number
    return row


def rows_from_csv(text: str) -> list[Row]:
    rows = []
    try:
        for record in csv.DictReader(io.StringIO(text)):
            row = row_from_mapping({k.strip(): v for k, v in record.items() if k})
            if row is not None:
                rows.append(row)
    except csv.Error:  # a field beyond the csv module's limit: the rows before it are kept
        pass
    return rows


def merge(rows: Iterable[Row]) -> list[Row]:
    """One row per step (later values win), so one upsert never touches a row twice."""
    by_step: dict[int, Row] = {}
    for row in rows:
        current = by_step.setdefault(row["step"], {"step": row["step"], "extra": {}})
        for key, value in row.items():
            if key == "extra":
                current["extra"].update(value)
            elif key != "step" and value is not None:
                current[key] = value
    return [by_step[step] for step in sorted(by_step)]


_UPSERT = f"""
INSERT INTO jobs_metricpoint AS p (job_id, step, {", ".join(COLUMNS)}, extra)
SELECT %s, * FROM unnest(%s::int[], {", ".join("%s::float8[]" for _ in COLUMNS)}, %s::jsonb[])
ON CONFLICT (job_id, step) DO UPDATE SET
  {", ".join(f"{c} = COALESCE(EXCLUDED.{c}, p.{c})" for c in COLUMNS)},
  extra = p.extra || EXCLUDED.extra
WHERE ({", ".join(f"p.{c}" for c in COLUMNS)}, p.extra)
  IS DISTINCT FROM ({", ".join(f"COALESCE(EXCLUDED.{c}, p.{c})" for c in COLUMNS)},
                    p.extra || EXCLUDED.extra)
RETURNING step, {", ".join(COLUMNS)}
"""  # noqa: S608 - only constant column names are interpolated


def upsert(job_id: Any, rows: Iterable[Row]) -> int:
    """Insert or merge metric rows in one statement: a value already stored is never replaced
    by a missing one, so events and the results CSV can arrive in any order. A row whose
    values are all already stored is left alone; the steps inserted or changed bring the
    run's display curves up to date in the same transaction (``jobs.curvestore``)."""
    import json

    merged = merge(rows)
    if not merged:
        return 0
    params: list[Any] = [job_id, [r["step"] for r in merged]]
    params += [[r.get(column) for r in merged] for column in COLUMNS]
    params.append([json.dumps(r["extra"]) for r in merged])
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, params)
            changed = cursor.fetchall()
        curvestore.update(job_id, changed)
    return len(merged)
