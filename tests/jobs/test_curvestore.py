"""Display curves kept by the metric ingest: whatever order, repetition or correction the rows
arrive in, the stored curves equal a pass over all of them; re-sending changes nothing;
the backfill and ``reduce_curves`` reduce rows written around the ingest."""

from __future__ import annotations

import importlib
import random
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobs import curvestore, metrics, reduction
from jobs.models import METRIC_COLUMNS, Job, MetricCurve, MetricPoint, ProviderConnection
from jobs.reduction import LEVELS
from jobs.services import connection_save

pytestmark = pytest.mark.django_db


@pytest.fixture
def provider() -> ProviderConnection:
    return connection_save(
        name="curves", kind="openai", base_url="https://api.example.invalid/v1", api_key="sk-x"
    )


def new_job(provider: ProviderConnection) -> Job:
    return Job.objects.create(connection=provider, base_model="gpt-4o-mini", status="running")


def stored(job: Job) -> dict[tuple[int, int], tuple[int, dict[str, Any]]]:
    return {
        (row.level, row.chunk): (row.width, row.buckets)
        for row in MetricCurve.objects.filter(job=job)
    }


def truth(rows: dict[int, dict[str, float]]) -> dict[int, dict[str, tuple[list, list]]]:
    """What each level draws of these rows, reduced from scratch by the pure module."""
    steps = sorted(rows)
    widths = reduction.widths_for(steps[-1])
    drawn: dict[int, dict[str, tuple[list, list]]] = {level: {} for level in LEVELS}
    for name in METRIC_COLUMNS:
        points = [(s, rows[s][name]) for s in steps if rows[s].get(name) is not None]
        for level in LEVELS:
            buckets = reduction.summarise(
                [s for s, _ in points], [v for _, v in points], widths[level]
            )
            if buckets:
                drawn[level][name] = reduction.display(buckets, level)
    return drawn


@st.composite
def deliveries(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    """Batches of metric rows as syncs deliver them: mostly the next steps, sometimes late
    ones, repeats of earlier rows, and corrections (a value sent again, different)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    top = draw(st.sampled_from([40, 300, 3000, 20_000]))
    batches: list[list[dict[str, Any]]] = []
    frontier = 0
    for _ in range(draw(st.integers(1, 12))):
        kind = rng.choice(["next", "next", "next", "late", "repeat", "correct"])
        size = rng.randint(1, min(2000, max(1, top // 6)))
        if kind == "next" or frontier == 0:
            steps = list(range(frontier + 1, min(top, frontier + size) + 1)) or [top]
            frontier = max(frontier, steps[-1])
            steps = steps[:: rng.choice([1, 1, 3])]
        else:
            steps = sorted(rng.sample(range(0, frontier + 1), min(size, frontier + 1)))
        batch = []
        for step in steps:
            row: dict[str, Any] = {"step": step, "extra": {}}
            for name in METRIC_COLUMNS:
                if rng.random() < (0.9 if name.startswith("train") else 0.2):
                    row[name] = round(rng.uniform(0, 3), rng.choice([1, 6]))
            batch.append(row)
        batches.append(batch)
    return batches


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(deliveries())
def test_ingested_curves_equal_a_pass_over_all_rows(
    provider: ProviderConnection, batches: list[list[dict[str, Any]]]
) -> None:
    job = new_job(provider)
    expected: dict[int, dict[str, float]] = {}
    for batch in batches:
        metrics.upsert(job.pk, batch)
        for row in batch:  # what the upsert keeps: a missing value never replaces one
            kept = expected.setdefault(row["step"], {})
            kept.update({k: v for k, v in row.items() if k in METRIC_COLUMNS and v is not None})
    incremental = stored(job)
    drawn = truth(expected)
    for level in LEVELS:
        assert curvestore.read([job.pk], level)[str(job.pk)] == {
            name: [steps, values] for name, (steps, values) in drawn[level].items()
        }
    curvestore.rebuild(job.pk)
    assert stored(job) == incremental


def test_a_resent_batch_writes_nothing(provider: ProviderConnection) -> None:
    job = new_job(provider)
    rows = [{"step": s, "train_loss": 1 / s, "extra": {}} for s in range(1, 5001)]
    metrics.upsert(job.pk, rows)
    before = stored(job)
    with CaptureQueriesContext(db_connection) as queries:
        metrics.upsert(job.pk, rows)
    assert not any("jobs_metriccurve" in q["sql"] for q in queries.captured_queries)
    assert stored(job) == before
    # A correction reads only the rows of the buckets it falls in, whatever the run's length.
    with CaptureQueriesContext(db_connection) as queries:
        metrics.upsert(job.pk, [{"step": 4321, "train_loss": 99.0, "extra": {}}])
    assert 4321 in curvestore.read([job.pk], 2000)[str(job.pk)]["train_loss"][0]
    assert len(queries.captured_queries) <= 8


def test_an_ingest_runs_a_bounded_number_of_queries(provider: ProviderConnection) -> None:
    counts = []
    for size in (10, 10_000):
        job = new_job(provider)
        rows = [{"step": s, "train_loss": 1 / s, "valid_loss": 2 / s} for s in range(1, size + 1)]
        with CaptureQueriesContext(db_connection) as queries:
            metrics.upsert(job.pk, rows)
        counts.append(len(queries.captured_queries))
        with CaptureQueriesContext(db_connection) as queries:  # the next sync: widening
            metrics.upsert(job.pk, [{"step": size * 5, "train_loss": 0.0}])
        counts.append(len(queries.captured_queries))
    # upsert, lock, highest step, stored rows, write; the other metric rows of the buckets
    # touched (none on a first ingest), and a delete when a level was widened.
    assert max(counts) <= 7, counts


def test_drawing_up_to_a_step_cuts_inside_a_bucket(provider: ProviderConnection) -> None:
    job = new_job(provider)
    rng = random.Random(5)
    values = {s: rng.uniform(0, 3) for s in range(1, 20_001)}
    metrics.upsert(job.pk, [{"step": s, "train_loss": v} for s, v in values.items()])
    width = MetricCurve.objects.filter(job=job, level=2000).values_list("width", flat=True)[0]
    for cut in (1, 12_345, 12_351, 20_000, 30_000):
        with CaptureQueriesContext(db_connection) as queries:
            drawn = curvestore.read([job.pk], 2000, up_to_step=cut)[str(job.pk)]["train_loss"]
        kept = sorted(s for s in values if s <= cut)
        buckets = reduction.summarise(kept, [values[s] for s in kept], width)
        assert drawn == list(reduction.display(buckets, 2000))
        assert len(queries.captured_queries) == (1 if cut >= 20_000 else 2)


def test_rows_written_around_the_ingest_are_reduced_by_the_backfill_and_the_command(
    provider: ProviderConnection,
) -> None:
    jobs = [new_job(provider) for _ in range(3)]
    for index, job in enumerate(jobs):
        MetricPoint.objects.bulk_create(
            MetricPoint(job=job, step=s, train_loss=(s * 37 + index) % 11 / 10)
            for s in range(1, 3000)
        )
    assert not MetricCurve.objects.exists()
    migration = importlib.import_module("jobs.migrations.0011_metriccurve_backfill")
    migration.backfill(django_apps, None)
    expected = {
        job.pk: truth({s: {"train_loss": (s * 37 + i) % 11 / 10} for s in range(1, 3000)})
        for i, job in enumerate(jobs)
    }
    for job in jobs:
        drawn = curvestore.read([job.pk], 150)[str(job.pk)]
        assert drawn == {"train_loss": list(expected[job.pk][150]["train_loss"])}
    first = stored(jobs[0])
    MetricCurve.objects.filter(job=jobs[0]).delete()
    call_command("reduce_curves", "--job", str(jobs[0].pk), verbosity=0)
    assert stored(jobs[0]) == first
    # Rows deleted by hand (never by the ingest) shrink the run: the next ingest notices.
    MetricPoint.objects.filter(job=jobs[1], step__gt=100).delete()
    metrics.upsert(jobs[1].pk, [{"step": 50, "train_loss": 5.0}])
    rows = {s: {"train_loss": (s * 37 + 1) % 11 / 10} for s in range(1, 101)}
    rows[50] = {"train_loss": 5.0}
    assert curvestore.read([jobs[1].pk], 2000)[str(jobs[1].pk)] == {
        "train_loss": list(truth(rows)[2000]["train_loss"])
    }


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(0, 300)), st.sampled_from([1, 4, 16, 64]))
def test_the_rows_read_besides_those_written_are_exactly_the_gaps(
    written: set[int], width: int
) -> None:
    steps = sorted(written)
    ranges = curvestore._ranges(steps, width)
    covered = {s for lo, hi in ranges for s in range(lo, hi + 1)}
    gaps = curvestore._gaps(ranges, steps)
    in_gaps = [s for lo, hi in gaps for s in range(lo, hi + 1)]
    assert len(in_gaps) == len(set(in_gaps)) and set(in_gaps) == covered - written
    assert all(lo <= hi for lo, hi in gaps)


def test_upsert_stores_every_float_exactly_and_leaves_out_non_finite_values(
    provider: ProviderConnection,
) -> None:
    """The rows travel as one JSON document: each value comes back as the same float (the
    shortest repr round-trips through float8), big and tiny ones included; infinities and
    NaN, which JSON cannot carry, are left out rather than failing the whole batch."""
    job = new_job(provider)
    rng = random.Random(5)
    values = [rng.uniform(-1e6, 1e6) for _ in range(200)] + [1e-300, 5e-324, 1.7976931348623157e308]
    rows = [{"step": s, "train_loss": v, "extra": {"lr": v / 3}} for s, v in enumerate(values, 1)]
    rows.append({"step": 900, "train_loss": float("inf"), "valid_loss": 0.5,
                 "extra": {"bad": float("nan"), "good": 2.5}})  # fmt: skip
    assert metrics.upsert(job.pk, rows) == len(values) + 1
    got = {p.step: p for p in MetricPoint.objects.filter(job=job)}
    for step, value in enumerate(values, 1):
        assert got[step].train_loss == value
        # jsonb keeps numbers as numeric: it prints 1.8e308 without an exponent, which reads
        # back as an int, so extras are compared as floats.
        assert {k: float(v) for k, v in got[step].extra.items()} == {"lr": value / 3}
    assert got[900].train_loss is None and got[900].valid_loss == 0.5
    assert got[900].extra == {"good": 2.5}
