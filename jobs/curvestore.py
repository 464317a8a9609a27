"""Each run's display curves (``MetricCurve``), kept in step with its metric rows by the ingest.

``jobs.metrics.upsert`` — the one way metric rows are written by syncs, history imports and
anything later — calls ``update`` with the steps whose rows it inserted or changed, in the
same transaction: the buckets those steps fall in are recomputed from the rows there (so a
late, out-of-order or re-sent row is simply counted again, never twice), and a level whose
bucket width must grow is widened by merging its stored buckets. Pages then read a few
small rows (``read``) instead of reducing every metric row of a run on first view.

``rebuild`` recomputes a run from all its rows (the backfill migration, ``manage.py
reduce_curves``, bundle imports). Both take a per-run transaction-level advisory lock, so a
rebuild and an ingest never interleave.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, Q

from jobs import reduction
from jobs.locks import lock_key
from jobs.models import METRIC_COLUMNS, MetricCurve, MetricPoint
from jobs.reduction import LEVELS, Buckets

LOCK = "jobs.curves"
Ranges = list[tuple[int, int]]  # inclusive step ranges, sorted, disjoint
Curve = dict[str, list[list[Any]]]  # metric -> [steps, values]: what a page draws


def _lock(job_id: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock_key(LOCK, job_id)])


def _max_step(job_id: Any) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT step FROM jobs_metricpoint WHERE job_id = %s ORDER BY step DESC LIMIT 1",
            [job_id],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _ranges(steps: Iterable[int], width: int) -> Ranges:
    """The ``width``-aligned step ranges the steps fall in, neighbours joined."""
    ranges: Ranges = []
    for index in sorted({step // width for step in steps}):
        lo, hi = index * width, (index + 1) * width - 1
        if ranges and ranges[-1][1] + 1 == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    return ranges


def _columns_in(job_id: Any, ranges: Ranges) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Steps and metric columns of the job's rows within ``ranges``, in step order."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.step, {', '.join(f'p.{c}' for c in METRIC_COLUMNS)} "  # noqa: S608 - constant names
            "FROM jobs_metricpoint p "
            "JOIN unnest(%s::int[], %s::int[]) AS r(lo, hi) ON p.step BETWEEN r.lo AND r.hi "
            "WHERE p.job_id = %s ORDER BY p.step",
            [[lo for lo, _ in ranges], [hi for _, hi in ranges], job_id],
        )
        rows = cursor.fetchall()
    steps = [row[0] for row in rows]
    return steps, list(zip(*(row[1:] for row in rows), strict=True)) if rows else []


def _fresh(
    steps: list[int], columns: Sequence[Sequence[Any]], widths: dict[int, int]
) -> dict[str, dict[int, Buckets]]:
    """metric -> level -> buckets of the given rows."""
    return {
        name: reduction.levels_of(steps, values, widths)
        for name, values in zip(METRIC_COLUMNS, columns, strict=True)
    }


def update(job_id: Any, steps: Iterable[int]) -> None:
    """Bring the stored curves of a run up to date after its rows at ``steps`` were inserted
    or changed. A fixed number of queries; reads only the rows of the buckets touched."""
    changed = sorted(set(steps))
    if not changed:
        return
    with transaction.atomic(savepoint=False):
        _lock(job_id)
        max_step = _max_step(job_id)
        if max_step is None:
            return
        widths = reduction.widths_for(max_step)
        ranges = _ranges(changed, max(widths.values()))
        touched = {level: _chunk_spans(ranges, widths[level]) for level in LEVELS}
        wanted = Q()
        for level in LEVELS:
            spans = Q()
            for first, last in touched[level]:
                spans |= Q(chunk__gte=first, chunk__lte=last)
            wanted |= Q(level=level) & (~Q(width=widths[level]) | spans)
        stored = list(
            MetricCurve.objects.filter(wanted, job_id=job_id).values_list(
                "level", "chunk", "width", "buckets"
            )
        )
        if any(width > widths[level] for level, _chunk, width, _ in stored):
            # Narrower than stored: rows were deleted. Only a pass over all of them can say.
            _rebuild(job_id, MetricPoint, MetricCurve)
            return
        row_steps, columns = _columns_in(job_id, ranges)
        fresh = _fresh(row_steps, columns, widths) if row_steps else {}
        writes: list[MetricCurve] = []
        stale = Q()
        for level in LEVELS:
            width = widths[level]
            rows = [(chunk, w, data) for lvl, chunk, w, data in stored if lvl == level]
            old_width = rows[0][1] if rows else width
            buckets: dict[str, Buckets] = defaultdict(dict)
            for _chunk, _w, data in rows:
                for name, flat in data.items():
                    buckets[name].update(reduction.unpack(flat, old_width))
            widened = old_width != width
            for name in list(buckets):
                buckets[name] = reduction.widen(buckets[name], old_width, width)
            for name in METRIC_COLUMNS:
                new = fresh.get(name, {}).get(level, {})
                if new or name in buckets:
                    reduction.replace_range(buckets[name], new, ranges, width)
            chunks = _chunks(buckets)
            if widened:
                keep = set(chunks)
                stale |= Q(level=level) & ~Q(chunk__in=keep)
            else:
                chunks = {
                    chunk: data
                    for chunk, data in chunks.items()
                    if any(a <= chunk <= b for a, b in touched[level])
                }
            writes += [
                MetricCurve(job_id=job_id, level=level, chunk=chunk, width=width, buckets=data)
                for chunk, data in chunks.items()
            ]
        if stale:
            MetricCurve.objects.filter(stale, job_id=job_id).delete()
        if writes:
            MetricCurve.objects.bulk_create(
                writes,
                update_conflicts=True,
                unique_fields=["job", "level", "chunk"],
                update_fields=["width", "buckets"],
            )


def _chunk_spans(ranges: Ranges, width: int) -> list[tuple[int, int]]:
    return [(reduction.chunk_of(lo // width), reduction.chunk_of(hi // width)) for lo, hi in ranges]


def _chunks(buckets: dict[str, Buckets]) -> dict[int, dict[str, list[float]]]:
    """Stored rows' ``buckets`` per chunk: {chunk: {metric: flat list}}."""
    chunks: dict[int, dict[str, list[float]]] = defaultdict(dict)
    for name in METRIC_COLUMNS:
        for chunk, flat in reduction.pack(buckets.get(name, {})).items():
            chunks[chunk][name] = flat
    return dict(chunks)


def rebuild(
    job_id: Any, *, points: type[Model] = MetricPoint, curves: type[Model] = MetricCurve
) -> int:
    """Recompute a run's stored curves from all its metric rows; returns the rows read.
    ``points`` / ``curves`` are the models to use (a migration passes its historical ones)."""
    with transaction.atomic(savepoint=False):
        _lock(job_id)
        return _rebuild(job_id, points, curves)


def _rebuild(job_id: Any, points: type[Model], curves: type[Model]) -> int:
    rows = list(
        points._default_manager.filter(job_id=job_id)
        .order_by("step")
        .values_list("step", *METRIC_COLUMNS)
    )
    curves._default_manager.filter(job_id=job_id).delete()
    if not rows:
        return 0
    steps = [row[0] for row in rows]
    widths = reduction.widths_for(steps[-1])
    fresh = _fresh(steps, list(zip(*(row[1:] for row in rows), strict=True)), widths)
    curves._default_manager.bulk_create(
        [
            curves(job_id=job_id, level=level, chunk=chunk, width=widths[level], buckets=data)
            for level in LEVELS
            for chunk, data in _chunks(
                {name: fresh[name][level] for name in METRIC_COLUMNS}
            ).items()
        ],
        batch_size=500,
    )
    return len(rows)


def read(job_ids: Sequence[Any], level: int, *, up_to_step: int | None = None) -> dict[str, Curve]:
    """What a page draws of each run at ``level`` ({run id: {metric: [steps, values]}}),
    up to ``up_to_step`` when given: one query, and one more when a run has rows past that
    step (the bucket it falls in is recomputed from its rows up to there)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    stored: dict[str, tuple[int, dict[str, Buckets]]] = {}
    if job_ids:
        rows = (
            MetricCurve.objects.filter(job_id__in=list(job_ids), level=level)
            .order_by("job_id", "chunk")
            .values_list("job_id", "width", "buckets")
        )
        for pk, width, data in rows:
            _width, buckets = stored.setdefault(str(pk), (width, defaultdict(dict)))
            for name, flat in data.items():
                buckets[name].update(reduction.unpack(flat, width))
    if up_to_step is not None:
        _cut(stored, up_to_step)
    curves: dict[str, Curve] = {}
    for job_id in map(str, job_ids):
        _width, buckets = stored.get(job_id, (1, {}))
        curve: Curve = {}
        for name in METRIC_COLUMNS:
            if buckets.get(name):
                steps, values = reduction.display(buckets[name], level)
                curve[name] = [steps, values]
        curves[job_id] = curve
    return curves


def _cut(stored: dict[str, tuple[int, dict[str, Buckets]]], step: int) -> None:
    """Leave out what lies after ``step``: buckets after it dropped, the one it falls in
    recomputed from the rows up to it (one query for all runs)."""
    partial: dict[str, tuple[int, int]] = {}
    for job_id, (width, buckets) in stored.items():
        last = max((int(b[max(b)][6]) for b in buckets.values() if b), default=None)
        if last is None or last <= step:
            continue
        for name in list(buckets):
            buckets[name] = reduction.up_to(buckets[name], width, step)
        partial[job_id] = (step - step % width, step)
    if not partial:
        return
    ids = list(partial)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.job_id, p.step, {', '.join(f'p.{c}' for c in METRIC_COLUMNS)} "  # noqa: S608 - constant names
            "FROM jobs_metricpoint p "
            "JOIN unnest(%s::uuid[], %s::int[], %s::int[]) AS r(job, lo, hi) "
            "ON p.job_id = r.job AND p.step BETWEEN r.lo AND r.hi ORDER BY p.job_id, p.step",
            [ids, [partial[i][0] for i in ids], [partial[i][1] for i in ids]],
        )
        rows = cursor.fetchall()
    by_job: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for row in rows:
        by_job[str(row[0])].append(row[1:])
    for job_id, job_rows in by_job.items():
        width, buckets = stored[job_id]
        steps = [row[0] for row in job_rows]
        for position, name in enumerate(METRIC_COLUMNS, start=1):
            fresh = reduction.summarise(steps, [row[position] for row in job_rows], width)
            if fresh:
                buckets.setdefault(name, {}).update(fresh)
