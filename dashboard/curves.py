"""Display-ready curves of runs, read from their metric rows or from the ``RunCurve`` cache.

A page never draws more than ``LEVELS[0]`` points per series, so a run's curves are reduced
once, with the chart core's min/max-per-bucket ``downsample`` (every spike and dip, the first
and last point and the global extremes survive), to a few point budgets: ``2000`` for a run's
own page, smaller ones for comparisons of many runs. The final value and the best
(lowest-loss / highest-accuracy) point of each metric are therefore exact at every level.

Finished runs never change, so their reduced curves and fit diagnosis are kept in
``RunCurve`` (written by ``services.run_curves_save``) and reused while the run's
``fingerprint`` is unchanged; a running run is read from its metric rows on every request.
Every function runs a fixed number of queries, whatever the number of runs and rows.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.db import transaction

from dashboard.charts import METRICS, CheckpointMark, RunSeries
from dashboard.diagnosis import CHECKPOINTS_KEPT, RULE_TEXT, diagnose
from dashboard.models import RunCurve
from jobs.models import Checkpoint, Job, MetricPoint

logger = logging.getLogger("tuneboard.dashboard")

LEVELS: tuple[int, ...] = (2000, 1000, 500, 250, 150)
# metric column -> [steps, values]: two flat lists (JSON-ready, and far fewer objects to
# decode and collect than one pair per point).
CurveLevel = dict[str, list[list[Any]]]


# Part of every fingerprint: a new number makes old cached curves stale. Raise it when the
# reduced curves or the diagnosis rules change (the cache holds the verdict too).
CURVE_FORMAT = 3


def level_for(budget: int) -> int:
    """The largest stored level within ``budget`` points per series (the smallest otherwise)."""
    fitting = [level for level in LEVELS if level <= budget]
    return max(fitting) if fitting else min(LEVELS)


def fingerprint(job: Job) -> str:
    """What a cached curve depends on; ``""`` when the run may still change (not cached)."""
    if job.status not in Job.TERMINAL or job.next_poll_at is not None:
        return ""
    parts = (
        f"v{CURVE_FORMAT}",
        job.status,
        job.last_synced_at.isoformat() if job.last_synced_at else "",
        job.last_step,
        job.total_steps,
        job.trained_tokens,
        job.finished_at.isoformat() if job.finished_at else "",
    )
    return "|".join("" if part is None else str(part) for part in parts)


def resolved_hyperparameters(job: Job) -> dict[str, Any]:
    """What the provider used, else what was requested ("auto" when neither is known)."""
    requested = job.requested_hyperparameters or {}
    resolved = job.hyperparameters or {}
    merged = {key: requested[key] for key in requested}
    merged.update({key: value for key, value in resolved.items() if value is not None})
    return merged


def n_epochs_of(job: Job) -> int | None:
    for source in (job.hyperparameters or {}, job.requested_hyperparameters or {}):
        value = source.get("n_epochs")
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def checkpoint_marks(rows: Iterable[dict[str, Any]]) -> dict[str, list[CheckpointMark]]:
    marks: dict[str, list[CheckpointMark]] = defaultdict(list)
    for row in rows:
        marks[str(row["job_id"])].append(
            CheckpointMark(
                step=int(row["step"]),
                model_id=row["model_name"] or "",
                metrics={
                    str(key): float(value)
                    for key, value in (row["metrics"] or {}).items()
                    if isinstance(value, int | float) and not isinstance(value, bool)
                },
            )
        )
    return marks


def checkpoints_for(job_ids: Sequence[Any]) -> dict[str, list[CheckpointMark]]:
    """Every run's checkpoints in one query."""
    rows = (
        Checkpoint.objects.filter(job_id__in=list(job_ids))
        .order_by("job_id", "step")
        .values("job_id", "step", "model_name", "metrics")
    )
    return checkpoint_marks(rows)


def available_checkpoint_steps(marks: Sequence[CheckpointMark]) -> list[int]:
    """Providers keep the checkpoints of the last epochs only (OpenAI: three)."""
    steps = sorted({mark.step for mark in marks})
    return steps[-CHECKPOINTS_KEPT:]


def series_from_points(
    job: Job,
    curve: CurveLevel,
    *,
    label: str,
    run_id: str,
    checkpoints: Sequence[CheckpointMark] = (),
    hyperparameters: dict[str, Any] | None = None,
) -> RunSeries:
    columns = {
        name: list(zip(*curve[name], strict=True)) if curve.get(name) else [] for name in METRICS
    }
    n_epochs = n_epochs_of(job)
    total = job.total_steps if job.total_steps and job.total_steps > 0 else None
    trained = job.trained_tokens if job.trained_tokens and job.trained_tokens > 0 else None
    return RunSeries(
        label=label,
        run_id=run_id,
        steps_per_epoch=total / n_epochs if total and n_epochs else None,
        total_steps=total,
        tokens_per_step=trained / total if trained and total else None,
        checkpoints=list(checkpoints),
        hyperparameters=hyperparameters
        if hyperparameters is not None
        else resolved_hyperparameters(job),
        **columns,  # type: ignore[arg-type]
    )


def reduce_points(steps: list[int], values: list[float], budget: int) -> tuple[list, list]:
    """``charts.downsample`` for points already clean (finite, sorted, unique steps), which
    is all a ``RunSeries`` holds: the same min/max-per-bucket choice, without re-checking
    every value (a test compares both on the same inputs)."""
    n = len(values)
    if n <= budget:
        return list(steps), list(values)
    kept = [0]
    interior = n - 2
    buckets = (budget - 2) // 2
    at = values.__getitem__
    for bucket in range(buckets):
        start = 1 + bucket * interior // buckets
        stop = 1 + (bucket + 1) * interior // buckets
        lowest = min(range(start, stop), key=at)
        highest = max(range(start, stop), key=at)
        if lowest == highest:
            kept.append(lowest)
        elif lowest < highest:
            kept += (lowest, highest)
        else:
            kept += (highest, lowest)
    kept.append(n - 1)
    return [steps[i] for i in kept], [values[i] for i in kept]


def levels_of(columns: dict[str, tuple[list[int], list[float]]]) -> dict[int, CurveLevel]:
    """Every metric reduced to each level, each level from the one above it (cheap, and the
    first, last, lowest and highest points survive every step)."""
    levels: dict[int, CurveLevel] = {}
    previous = columns
    for level in LEVELS:
        reduced = {
            name: reduce_points(steps, values, level)
            for name, (steps, values) in previous.items()
            if steps
        }
        levels[level] = {name: [steps, values] for name, (steps, values) in reduced.items()}
        previous = reduced
    return levels


def diagnosis_dict(run: RunSeries) -> dict[str, Any]:
    result = diagnose(run, checkpoint_steps_available=available_checkpoint_steps(run.checkpoints))
    data = dataclasses.asdict(result)
    data.pop("rule_text", None)  # a constant: added back when shown
    return data


def with_rule_text(diagnosis: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if diagnosis is None else {**diagnosis, "rule_text": RULE_TEXT}


@dataclass
class Curves:
    """One run's curves at one level, its diagnosis (when asked for) and where they came from."""

    job_id: str
    points: CurveLevel
    diagnosis: dict[str, Any] | None
    cached: bool
    row_count: int

    @property
    def last_step(self) -> int | None:
        ends = [int(steps[-1]) for steps, _ in self.points.values() if steps]
        return max(ends) if ends else None


Columns = dict[str, tuple[list, list]]  # metric -> (steps, values), sorted by step


def metric_columns(
    job_ids: Sequence[Any], *, up_to_step: int | None = None
) -> dict[str, tuple[int, Columns]]:
    """All metric rows of these runs in one query (up to ``up_to_step`` when given), as (row
    count, sorted (steps, values) per metric) per run; missing and non-finite values are left
    out."""
    grouped: dict[str, tuple[int, Columns]] = {}
    if not job_ids:
        return grouped
    points = MetricPoint.objects.filter(job_id__in=list(job_ids))
    if up_to_step is not None:
        points = points.filter(step__lte=up_to_step)
    rows = points.order_by("job_id", "step").values_list("job_id", "step", *METRICS)
    isfinite = math.isfinite
    for job_id, job_rows in groupby(rows.iterator(chunk_size=5000), key=itemgetter(0)):
        columns: Columns = {name: ([], []) for name in METRICS}
        count = 0
        for row in job_rows:
            count += 1
            step = row[1]
            for name, value in zip(METRICS, row[2:], strict=True):
                if value is not None and isfinite(value):
                    steps, values = columns[name]
                    steps.append(step)
                    values.append(value)
        grouped[str(job_id)] = (count, columns)
    return grouped


def _full_series(job: Job, columns: Columns, marks: Sequence[CheckpointMark]) -> RunSeries:
    flat = {name: list(columns[name]) for name in METRICS if name in columns and columns[name][0]}
    return series_from_points(job, flat, label="", run_id=str(job.pk), checkpoints=marks)


def compute(
    job: Job, columns: Columns, marks: Sequence[CheckpointMark], *, with_diagnosis: bool
) -> tuple[dict[int, CurveLevel], dict[str, Any] | None]:
    """All levels of a run's curves (and its diagnosis) from its metric columns."""
    levels = levels_of(columns)
    diagnosis = diagnosis_dict(_full_series(job, columns, marks)) if with_diagnosis else None
    return levels, diagnosis


def curves_for(
    jobs: Sequence[Job],
    *,
    level: int,
    checkpoints: dict[str, list[CheckpointMark]],
    with_diagnosis: bool = False,
    up_to_step: int | None = None,
) -> dict[str, Curves]:
    """Each run's curves at ``level`` (one of ``LEVELS``): cached curves of finished runs
    (one query), the metric rows of the others (one query), and the newly finished runs'
    curves at every level stored for next time (one query)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    prints = {str(job.pk): fingerprint(job) for job in jobs}
    cacheable = [job_id for job_id, value in prints.items() if value]
    cached: dict[str, dict[str, Any]] = {}
    if cacheable:
        fields = ["job_id", "fingerprint", "row_count", "points"]
        if with_diagnosis:
            fields.append("diagnosis")
        rows = RunCurve.objects.filter(job_id__in=cacheable, level=level).values(*fields)
        for row in rows:
            job_id = str(row["job_id"])
            usable = row["fingerprint"] == prints[job_id] and (
                not with_diagnosis or row["diagnosis"] is not None
            )
            if usable:
                cached[job_id] = row
    missing = [job for job in jobs if str(job.pk) not in cached]
    # ``up_to_step``: what the job page's poll reported (runs still going are never cached).
    columns = metric_columns([job.pk for job in missing], up_to_step=up_to_step)
    result: dict[str, Curves] = {}
    to_store: list[RunCurve] = []
    for job in jobs:
        job_id = str(job.pk)
        if job_id in cached:
            row = cached[job_id]
            result[job_id] = Curves(
                job_id=job_id,
                points=row["points"],
                diagnosis=with_rule_text(row.get("diagnosis")) if with_diagnosis else None,
                cached=True,
                row_count=row["row_count"],
            )
            continue
        count, job_columns = columns.get(job_id, (0, {}))
        levels, diagnosis = compute(
            job, job_columns, checkpoints.get(job_id, []), with_diagnosis=with_diagnosis
        )
        if prints[job_id] and up_to_step is None:
            to_store += curve_rows(job, prints[job_id], levels, diagnosis, count)
        result[job_id] = Curves(
            job_id=job_id,
            points=levels[level],
            diagnosis=with_rule_text(diagnosis) if with_diagnosis else None,
            cached=False,
            row_count=count,
        )
    if to_store:
        from dashboard.services import run_curves_save

        run_curves_save(curves=to_store)
    return result


def curve_rows(
    job: Job,
    print_: str,
    levels: dict[int, CurveLevel],
    diagnosis: dict[str, Any] | None,
    count: int,
) -> list[RunCurve]:
    return [
        RunCurve(
            job_id=job.pk,
            level=level,
            fingerprint=print_,
            row_count=count,
            points=points,
            diagnosis=diagnosis if level == LEVELS[0] else None,
        )
        for level, points in levels.items()
    ]


def warm(job_id: Any) -> bool:
    """Compute and store a finished run's curves and diagnosis unless they are cached already
    (called when a run finishes, so pages never pay for it). True when it computed them."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or not fingerprint(job):
        return False
    current = RunCurve.objects.filter(
        job_id=job.pk, level=LEVELS[0], fingerprint=fingerprint(job), diagnosis__isnull=False
    )
    if current.exists():
        return False
    marks = checkpoints_for([job.pk])
    curves_for([job], level=LEVELS[0], checkpoints=marks, with_diagnosis=True)
    return True


_WARM_FIELDS = frozenset({"status", "next_poll_at", "last_step", "total_steps", "last_synced_at"})


def warm_finished_run(
    sender: type, instance: Job, update_fields: Iterable[str] | None = None, **kwargs: object
) -> None:
    """``post_save`` of a Job (connected in DashboardConfig.ready): a run saved in its final
    state (its last sync) gets its display curves and diagnosis computed once the transaction
    commits, so no page has to read its metric rows again."""
    if instance.status not in Job.TERMINAL or instance.next_poll_at is not None:
        return
    if update_fields is not None and not _WARM_FIELDS & set(update_fields):
        return
    job_id = instance.pk
    transaction.on_commit(lambda: _warm_safely(job_id))


def _warm_safely(job_id: Any) -> None:
    try:
        warm(job_id)
    except Exception:  # a cache: never let it break the sync that finished the run
        logger.exception("could not cache curves of %s", job_id)
