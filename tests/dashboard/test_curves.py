"""The curve cache: its reduction equals the chart core's downsampling, finished runs are
cached when they finish, and comparisons stay within their size budget."""

from __future__ import annotations

import random

import pytest
from django.utils import timezone

from dashboard import curves
from dashboard.charts import downsample
from dashboard.models import RunCurve
from dashboard.selectors_runs import compare_level
from jobs import metrics
from jobs.models import Job
from jobs.services import job_annotate


@pytest.mark.parametrize("seed", range(8))
def test_reduce_points_equals_the_chart_cores_downsample(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.choice([3, 10, 150, 151, 999, 2000, 2001, 4321])
    steps = sorted(rng.sample(range(1, 10 * n), n))
    # Ties on purpose: the first lowest and first highest of a bucket must win, as in the core.
    values = [round(rng.uniform(0, 3), 1) for _ in range(n)]
    for budget in (4, 5, 150, 250, 2000):
        assert curves.reduce_points(steps, values, budget) == downsample(steps, values, budget)


def test_levels_keep_first_last_and_extremes() -> None:
    steps = list(range(1, 20_001))
    values = [1.0 + (i % 97) / 100 for i in steps]
    values[12_345] = 0.01
    levels = curves.levels_of({"train_loss": (steps, values)})
    for level, data in levels.items():
        kept_steps, kept_values = data["train_loss"]
        assert len(kept_steps) == len(kept_values) <= level
        assert (kept_steps[0], kept_values[0]) == (1, values[0])
        assert (kept_steps[-1], kept_values[-1]) == (20_000, values[-1])
        assert kept_values[kept_steps.index(12_346)] == 0.01


def test_a_comparison_fits_the_page_budget() -> None:
    assert [compare_level(n) for n in (2, 3, 5, 10, 20)] == [1000, 1000, 500, 250, 150]
    assert all(compare_level(n) * n <= 3500 for n in range(2, 21))


@pytest.mark.django_db
def test_a_run_is_cached_when_it_finishes(make_job, django_capture_on_commit_callbacks) -> None:
    job = make_job(status="running", finished_at=None, total_steps=50)
    metrics.upsert(job.pk, [{"step": s, "train_loss": 2 / s, "full_valid_loss": 1 / s if s % 10 == 0 else None}
                            for s in range(1, 51)])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        job.status, job.next_poll_at, job.last_step = "succeeded", timezone.now(), 50
        job.save()  # the first terminal sync: one more poll is due, nothing cached yet
    assert not RunCurve.objects.filter(job=job).exists()
    with django_capture_on_commit_callbacks(execute=True):
        job.next_poll_at = None
        job.save()  # the final sync
    top = RunCurve.objects.get(job=job, level=curves.LEVELS[0])
    assert RunCurve.objects.filter(job=job).count() == len(curves.LEVELS)
    assert top.row_count == 50 and top.diagnosis["best_step"] == 50
    assert top.fingerprint == curves.fingerprint(Job.objects.get(pk=job.pk))
    computed = top.computed_at
    with django_capture_on_commit_callbacks(execute=True):
        job_annotate(job=job, user=None, tags=["later"])  # not a sync: nothing to recompute
        job.save()  # a plain save of the same state: the cache is current, kept as it is
    assert RunCurve.objects.get(job=job, level=curves.LEVELS[0]).computed_at == computed


@pytest.mark.django_db
def test_a_cache_error_never_breaks_the_save(
    make_job, django_capture_on_commit_callbacks, monkeypatch
) -> None:
    job = make_job(status="running", finished_at=None)

    def broken(job_id: object) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(curves, "warm", broken)
    with django_capture_on_commit_callbacks(execute=True):
        Job.objects.get(pk=job.pk).save()  # still running: not even tried
        job.status = "succeeded"
        job.save()
    assert Job.objects.get(pk=job.pk).status == "succeeded"
