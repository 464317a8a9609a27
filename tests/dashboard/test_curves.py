"""Curves and diagnoses of runs: the levels a page reads, a finished run's diagnosis stored
when it finishes, and comparisons within their size budget."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dashboard import curves
from dashboard.models import RunDiagnosis
from dashboard.selectors_runs import compare_level
from jobs import metrics
from jobs.models import Job
from jobs.services import job_annotate


def test_a_comparison_fits_the_page_budget() -> None:
    assert [compare_level(n) for n in (2, 3, 5, 10, 20)] == [1000, 1000, 500, 250, 150]
    assert all(compare_level(n) * n <= 3500 for n in range(2, 21))


@pytest.mark.django_db
def test_a_runs_diagnosis_is_stored_when_it_finishes(
    make_job, django_capture_on_commit_callbacks
) -> None:
    job = make_job(status="running", finished_at=None, total_steps=50)
    metrics.upsert(job.pk, [{"step": s, "train_loss": 2 / s, "full_valid_loss": 1 / s if s % 10 == 0 else None}
                            for s in range(1, 51)])  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        job.status, job.next_poll_at, job.last_step = "succeeded", timezone.now(), 50
        job.save()  # the first terminal sync: one more poll is due, nothing cached yet
    assert not RunDiagnosis.objects.filter(job=job).exists()
    with django_capture_on_commit_callbacks(execute=True):
        job.next_poll_at = None
        job.save()  # the final sync
    top = RunDiagnosis.objects.get(job=job)
    assert top.diagnosis["best_step"] == 50
    assert top.fingerprint == curves.fingerprint(Job.objects.get(pk=job.pk))
    computed = top.computed_at
    with django_capture_on_commit_callbacks(execute=True):
        job_annotate(job=job, user=None, tags=["later"])  # not a sync: nothing to recompute
        job.save()  # a plain save of the same state: the cache is current, kept as it is
    assert RunDiagnosis.objects.get(job=job).computed_at == computed


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


@pytest.mark.django_db
def test_every_level_keeps_first_last_and_extremes(make_job) -> None:
    job = make_job(status="running", finished_at=None)
    steps = list(range(1, 20_001))
    values = [1.0 + (i % 97) / 100 for i in steps]
    values[12_345] = 0.01  # step 12,346
    for start in range(0, 20_000, 1000):  # as a running job's syncs deliver it
        metrics.upsert(job.pk, [{"step": s, "train_loss": values[s - 1]}
                                for s in steps[start:start + 1000]])  # fmt: skip
    for level in curves.LEVELS:
        shown = curves.curves_for([job], level=level, checkpoints={})[str(job.pk)]
        kept_steps, kept_values = shown.points["train_loss"]
        assert level // 2 - 2 <= len(kept_steps) == len(kept_values) <= level
        assert (kept_steps[0], kept_values[0]) == (1, values[0])
        assert (kept_steps[-1], kept_values[-1]) == (20_000, values[-1])
        assert kept_values[kept_steps.index(12_346)] == 0.01
        assert shown.last_step == 20_000
