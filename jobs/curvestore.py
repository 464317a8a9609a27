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

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from operator import itemgetter
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


def _gaps(ranges: Ranges, steps: Sequence[int]) -> Ranges:
    """The parts of ``ranges`` outside the sorted, unique ``steps`` (all inside them)."""
    gaps: Ranges = []
    at = 0
    for lo, hi in ranges:
        start = lo
        while at < len(steps) and steps[at] <= hi:
            if steps[at] > start:
                gaps.append((start, steps[at] - 1))
            start = steps[at] + 1
            at += 1
        if start <= hi:
            gaps.append((start, hi))
    return gaps


def _rows_in(job_id: Any, ranges: Ranges) -> list[tuple[Any, ...]]:
    """(step, metric columns…) of the job's rows within ``ranges``, in step order."""
    if not ranges:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.step, {', '.join(f'p.{c}' for c in METRIC_COLUMNS)} "  # noqa: S608 - constant names
            "FROM jobs_metricpoint p "
            "JOIN unnest(%s::int[], %s::int[]) AS r(lo, hi) ON p.step BETWEEN r.lo AND r.hi "
            "WHERE p.job_id = %s ORDER BY p.step",
            [[lo for lo, _ in ranges], [hi for _, hi in ranges], job_id],
        )
        return list(cursor.fetchall())


def _as_columns(rows: Sequence[Sequence[Any]]) -> tuple[list[int], list[tuple[Any, ...]]]:
    """Rows (step, metric columns…) as steps and one value list per metric."""
    if not rows:
        return [], []
    columns = list(zip(*rows, strict=True))
    return list(columns[0]), columns[1:]


def _fresh(
    steps: list[int], columns: Sequence[Sequence[Any]], widths: dict[int, int]
) -> dict[str, dict[int, Buckets]]:
    """metric -> level -> buckets of the given rows."""
    return {
        name: reduction.levels_of(steps, values, widths)
        for name, values in zip(METRIC_COLUMNS, columns, strict=True)
    }


def update(job_id: Any, changed: Iterable[Sequence[Any]]) -> None:
    """Bring the stored curves of a run up to date after the rows ``changed`` — (step, metric
    columns…) as now stored — were inserted or changed. A fixed number of queries; reads only
    the other rows of the buckets touched."""
    by_step = {row[0]: row for row in changed}
    fresh_rows = [by_step[step] for step in sorted(by_step)]
    if not fresh_rows:
        return
    with transaction.atomic(savepoint=False):
        _lock(job_id)
        max_step = _max_step(job_id)
        if max_step is None:
            return
        widths = reduction.widths_for(max_step)
        steps = [row[0] for row in fresh_rows]
        ranges = _ranges(steps, max(widths.values()))
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
        # The rows just written came back from the upsert; only the others are read.
        others = _rows_in(job_id, _gaps(ranges, steps))
        rows = sorted([*fresh_rows, *others], key=itemgetter(0)) if others else fresh_rows
        fresh = _fresh(*_as_columns(rows), widths)
        writes: list[tuple[int, int, int, dict[str, list[float]]]] = []
        stale = Q()
        for level in LEVELS:
            width = widths[level]
            kept = [(chunk, w, data) for lvl, chunk, w, data in stored if lvl == level]
            old_width = kept[0][1] if kept else width
            buckets: dict[str, Buckets] = defaultdict(dict)
            for _chunk, _w, data in kept:
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
            writes += [(level, chunk, width, data) for chunk, data in chunks.items()]
        if stale:
            MetricCurve.objects.filter(stale, job_id=job_id).delete()
        _write(job_id, writes)


_WRITE = """
INSERT INTO jobs_metriccurve (job_id, level, chunk, width, buckets)
SELECT %s, * FROM unnest(%s::int[], %s::int[], %s::int[], %s::jsonb[])
ON CONFLICT (job_id, level, chunk) DO UPDATE SET width = EXCLUDED.width, buckets = EXCLUDED.buckets
"""


def _write(job_id: Any, rows: list[tuple[int, int, int, dict[str, list[float]]]]) -> None:
    """Insert or replace stored rows (level, chunk, width, buckets) in one statement."""
    if not rows:
        return
    dumps = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
    levels, chunks, widths, buckets = zip(*rows, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            _WRITE,
            [job_id, list(levels), list(chunks), list(widths), [dumps(b) for b in buckets]],
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
    widths = reduction.widths_for(rows[-1][0])
    fresh = _fresh(*_as_columns(rows), widths)
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
