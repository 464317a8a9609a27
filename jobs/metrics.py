"""Metric rows from the two places providers report them: metrics events (names like
`train_mean_token_accuracy`) and the results CSV (`train_accuracy`, empty cells). Every numeric
key is kept: known ones as columns, the rest in `extra`."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from django.db import connection, transaction
from django.db.models import Max

from jobs import curvestore, storable
from jobs.models import METRIC_COLUMNS, Job, MetricPoint

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


LOSS_KEYS = frozenset(k for k, column in ALIASES.items() if column.endswith("_loss"))


def non_finite_loss_step(data: Mapping[str, Any]) -> int | None:
    """The step of a report whose loss is NaN or infinite (the row keeps no such value; the
    divergence guardrail hears of it through this)."""
    step = _number(data.get("step"))
    if step is None or not STEP_RANGE[0] <= step <= STEP_RANGE[1]:
        return None
    for key in LOSS_KEYS:
        value = data.get(key)
        if isinstance(value, bool) or value is None or value == "":
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not math.isfinite(number):
            return int(step)
    return None


def csv_mappings(text: str) -> list[dict[str, Any]]:
    try:
        return [
            {k.strip(): v for k, v in record.items() if k}
            for record in csv.DictReader(io.StringIO(text))
        ]
    except csv.Error:  # a field beyond the csv module's limit: the rows before it are kept
        return []


def rows_from_csv(text: str) -> list[Row]:
    return [r for r in map(row_from_mapping, csv_mappings(text)) if r]


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


# The rows travel as one JSON document read by ``jsonb_to_recordset``: one parameter encoded by
# the json module's C encoder, rather than seven arrays that the driver quotes element by
# element (most of the ingest's time went there). A JSON number reads back as the same float8.
_UPSERT = f"""
INSERT INTO jobs_metricpoint AS p (job_id, step, {", ".join(COLUMNS)}, extra)
SELECT %s, r.step, {", ".join(f"r.{c}" for c in COLUMNS)}, COALESCE(r.extra, '{{}}'::jsonb)
FROM jsonb_to_recordset(%s::jsonb)
  AS r(step int, {", ".join(f"{c} float8" for c in COLUMNS)}, extra jsonb)
ON CONFLICT (job_id, step) DO UPDATE SET
  {", ".join(f"{c} = COALESCE(EXCLUDED.{c}, p.{c})" for c in COLUMNS)},
  extra = p.extra || EXCLUDED.extra
WHERE ({", ".join(f"p.{c}" for c in COLUMNS)}, p.extra)
  IS DISTINCT FROM ({", ".join(f"COALESCE(EXCLUDED.{c}, p.{c})" for c in COLUMNS)},
                    p.extra || EXCLUDED.extra)
RETURNING step, {", ".join(COLUMNS)}
"""  # noqa: S608 - only constant column names are interpolated
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode


def _finite(rows: list[Row]) -> list[Row]:
    """Rows without non-finite values (JSON has none; a chart cannot draw them either)."""
    for row in rows:
        for key, value in list(row.items()):
            if isinstance(value, float) and not math.isfinite(value):
                del row[key]
        extra = row["extra"]
        for key, value in list(extra.items()):
            if isinstance(value, float) and not math.isfinite(value):
                del extra[key]
    return rows


def upsert(job_id: Any, rows: Iterable[Row]) -> int:
    """Insert or merge metric rows in one statement: a value already stored is never replaced
    by a missing one, so events and the results CSV can arrive in any order. A row whose
    values are all already stored is left alone; the steps inserted or changed bring the
    run's display curves up to date in the same transaction (``jobs.curvestore``)."""
    merged = merge(rows)
    if not merged:
        return 0
    try:
        document = _encode(merged)
    except ValueError:  # a non-finite value from a caller that did not go through _number
        document = _encode(_finite(merged))
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            cursor.execute(_UPSERT, [job_id, document])
            changed = cursor.fetchall()
        curvestore.update(job_id, changed)
    return len(merged)


def summarise(job: Job) -> None:
    """The run's metric summary the lists show (last step and train loss, best full-valid
    loss and its step), set on ``job`` from its metric rows; the caller saves it."""
    points = MetricPoint.objects.filter(job=job)
    last = (
        points.exclude(train_loss__isnull=True)
        .order_by("-step")
        .values("step", "train_loss")
        .first()
    )
    if last:
        job.last_step = last["step"]
        job.final_train_loss = last["train_loss"]
    best = (
        points.exclude(full_valid_loss__isnull=True)
        .order_by("full_valid_loss", "step")
        .values("step", "full_valid_loss")
        .first()
    )
    if best:
        job.best_full_valid_loss = best["full_valid_loss"]
        job.best_full_valid_step = best["step"]
    if job.total_steps is None:
        job.total_steps = points.aggregate(Max("step"))["step__max"]
