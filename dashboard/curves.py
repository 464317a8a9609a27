"""Display-ready curves of runs (``jobs.curvestore``) and the fit diagnosis of their rows.

The ingest keeps every run's curves reduced for display at a few point budgets (``LEVELS``:
``2000`` for a run's own page, smaller ones for comparisons of many runs; see
``jobs.reduction``), so a page reads a few small rows per run whatever its length, the first
time as every time. The final value and the best (lowest-loss / highest-accuracy) point of
each metric are exact at every level.

The fit diagnosis reads all of a run's metric rows, so it is kept in ``RunDiagnosis`` and
reused while the run's ``diagnosis_key`` is unchanged: a finished run's is computed when it
finishes (``warm``, in the sync that finished it), a running run's after each sync that brought
new steps (``warm`` again, in a task of its own so the sync is not held). A page computes one
itself only when the stored one is behind (a sync committed, its refresh not done yet) or when
the job page asks for the figures up to an earlier step. Every function runs a fixed number of
queries, whatever the number of runs and rows.
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

from dashboard.charts import METRICS, CheckpointMark, RunSeries
from dashboard.diagnosis import CHECKPOINTS_KEPT, RULE_TEXT, diagnose
from dashboard.models import RunDiagnosis
from jobs import curvestore, reduction
from jobs.models import Checkpoint, Job, MetricPoint

logger = logging.getLogger("tuneboard.dashboard")

LEVELS: tuple[int, ...] = reduction.LEVELS
# metric column -> [steps, values]: two flat lists (JSON-ready, and far fewer objects to
# decode and collect than one pair per point).
CurveLevel = curvestore.Curve


# Part of every fingerprint: a new number makes old cached diagnoses stale. Raise it when the
# diagnosis rules change.
DIAGNOSIS_FORMAT = 3


def level_for(budget: int) -> int:
    """The largest stored level within ``budget`` points per series (the smallest otherwise)."""
    fitting = [level for level in LEVELS if level <= budget]
    return max(fitting) if fitting else min(LEVELS)


def fingerprint(job: Job) -> str:
    """What a cached diagnosis depends on; ``""`` when the run may still change (not cached)."""
    if job.status not in Job.TERMINAL or job.next_poll_at is not None:
        return ""
    parts = (
        f"v{DIAGNOSIS_FORMAT}",
        job.status,
        job.last_synced_at.isoformat() if job.last_synced_at else "",
        job.last_step,
        job.total_steps,
        job.trained_tokens,
        job.finished_at.isoformat() if job.finished_at else "",
    )
    return "|".join("" if part is None else str(part) for part in parts)


def diagnosis_key(job: Job, marks: Sequence[CheckpointMark]) -> str:
    """What a stored diagnosis depends on: a finished run's ``fingerprint``; for a run that
    may still change, its last step, size and checkpoints; ``""`` before any step."""
    finished = fingerprint(job)
    if finished:
        return finished
    if job.last_step is None:
        return ""
    parts = (
        "live",
        f"v{DIAGNOSIS_FORMAT}",
        job.status,
        job.last_step,
        job.total_steps,
        job.trained_tokens,
        len(marks),
        max((mark.step for mark in marks), default=""),
    )
    return "|".join("" if part is None else str(part) for part in parts)


def _covers(job: Job, up_to_step: int | None) -> bool:
    """Whether a diagnosis of all the run's rows is also its diagnosis up to ``up_to_step``
    (always for a finished run, whose rows no longer change)."""
    if up_to_step is None or fingerprint(job):
        return True
    return job.last_step is not None and up_to_step >= job.last_step


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


def diagnosis_dict(run: RunSeries) -> dict[str, Any]:
    result = diagnose(run, checkpoint_steps_available=available_checkpoint_steps(run.checkpoints))
    data = dataclasses.asdict(result)
    data.pop("rule_text", None)  # a constant: added back when shown
    return data


def with_rule_text(diagnosis: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if diagnosis is None else {**diagnosis, "rule_text": RULE_TEXT}


@dataclass
class Curves:
    """One run's curves at one level and its diagnosis (when asked for)."""

    job_id: str
    points: CurveLevel
    diagnosis: dict[str, Any] | None

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


def compute_diagnosis(
    job: Job, columns: Columns, marks: Sequence[CheckpointMark]
) -> dict[str, Any]:
    """A run's diagnosis from all its metric columns."""
    return diagnosis_dict(_full_series(job, columns, marks))


def stored_diagnoses(
    jobs: Sequence[Job], *, checkpoints: dict[str, list[CheckpointMark]]
) -> dict[str, dict[str, Any]]:
    """The diagnoses stored for these finished runs and still current (one query, always,
    so a page's query count does not depend on which runs have one)."""
    prints = {str(job.pk): diagnosis_key(job, checkpoints.get(str(job.pk), [])) for job in jobs}
    rows = RunDiagnosis.objects.filter(
        job_id__in=[job_id for job_id, value in prints.items() if value]
    ).values_list("job_id", "fingerprint", "diagnosis")
    return {str(job_id): data for job_id, print_, data in rows if print_ == prints[str(job_id)]}


def diagnoses_for(
    jobs: Sequence[Job],
    *,
    checkpoints: dict[str, list[CheckpointMark]],
    up_to_step: int | None = None,
) -> dict[str, dict[str, Any]]:
    """Each run's diagnosis (without its rule text): the stored one while its
    ``diagnosis_key`` holds (one query), else from its metric rows (one query), stored for
    next time (one write) unless it stops at an earlier ``up_to_step``."""
    prints = {str(job.pk): diagnosis_key(job, checkpoints.get(str(job.pk), [])) for job in jobs}
    covered = {str(job.pk) for job in jobs if _covers(job, up_to_step)}
    cacheable = [job_id for job_id, value in prints.items() if value and job_id in covered]
    found: dict[str, dict[str, Any]] = {}
    if cacheable:
        rows = RunDiagnosis.objects.filter(job_id__in=cacheable).values_list(
            "job_id", "fingerprint", "diagnosis"
        )
        found = {
            str(job_id): data for job_id, print_, data in rows if print_ == prints[str(job_id)]
        }
    missing = [job for job in jobs if str(job.pk) not in found]
    # ``up_to_step``: what the job page's poll reported (runs still going are never stored).
    columns = metric_columns([job.pk for job in missing], up_to_step=up_to_step)
    to_store: list[RunDiagnosis] = []
    for job in missing:
        job_id = str(job.pk)
        _count, job_columns = columns.get(job_id, (0, {}))
        found[job_id] = compute_diagnosis(job, job_columns, checkpoints.get(job_id, []))
        if prints[job_id] and (up_to_step is None or (job_id in covered and not fingerprint(job))):
            to_store.append(
                RunDiagnosis(job_id=job.pk, fingerprint=prints[job_id], diagnosis=found[job_id])
            )
    if to_store:
        from dashboard.services import run_diagnoses_save

        run_diagnoses_save(diagnoses=to_store)
    return found


def curves_for(
    jobs: Sequence[Job],
    *,
    level: int,
    checkpoints: dict[str, list[CheckpointMark]],
    with_diagnosis: bool = False,
    up_to_step: int | None = None,
) -> dict[str, Curves]:
    """Each run's curves at ``level`` (one of ``LEVELS``) as the ingest stored them (one
    query; one more for a run with rows past ``up_to_step``), and with ``with_diagnosis``
    its diagnosis (``diagnoses_for``)."""
    points = curvestore.read([job.pk for job in jobs], level, up_to_step=up_to_step)
    diagnoses = (
        diagnoses_for(jobs, checkpoints=checkpoints, up_to_step=up_to_step)
        if with_diagnosis
        else {}
    )
    return {
        str(job.pk): Curves(
            job_id=str(job.pk),
            points=points[str(job.pk)],
            diagnosis=with_rule_text(diagnoses.get(str(job.pk))) if with_diagnosis else None,
        )
        for job in jobs
    }


def warm(job_id: Any) -> bool:
    """Compute and store a run's diagnosis unless the stored one is current (called after a
    sync, so pages do not pay for it). True when it computed it."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return False
    marks = checkpoints_for([job.pk])
    key = diagnosis_key(job, marks.get(str(job.pk), []))
    if not key or RunDiagnosis.objects.filter(job_id=job.pk, fingerprint=key).exists():
        return False
    diagnoses_for([job], checkpoints=marks)
    return True
