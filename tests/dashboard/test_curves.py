"""Curves and diagnoses of runs: the levels a page reads, a finished run's diagnosis stored
when it finishes, and comparisons within their size budget."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard import curves
from dashboard.models import RunDiagnosis
from dashboard.selectors_runs import compare_level
from jobs import metrics
from jobs.models import Job
from jobs.services import job_annotate
from tests.conftest import wait_until
from tests.permissions import client_for


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


def _figures(job: Job, **params: object) -> tuple[dict, bool]:
    """The run's figures.json, and whether answering it read the run's metric rows."""
    client = client_for("viewer")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/runs/{job.pk}/figures.json", params)
    assert response.status_code == 200, response.content
    read_rows = any('"jobs_metricpoint"' in q["sql"] for q in queries.captured_queries)
    return response.json(), read_rows


def _running(make_job, steps: int) -> Job:  # type: ignore[no-untyped-def]
    return make_job(
        steps=steps, status="running", finished_at=None, next_poll_at=timezone.now(),
        checkpoints=False,
    )  # fmt: skip


def _sync_more_steps(job: Job, upto: int) -> None:
    """What a sync stores before its diagnosis refresh has run."""
    rows = [{"step": s, "train_loss": 2 / s, "valid_loss": 2.2 / s} for s in range(job.last_step + 1, upto + 1)]  # fmt: skip
    metrics.upsert(job.pk, rows)
    Job.objects.filter(pk=job.pk).update(last_step=upto)
    job.refresh_from_db()


@pytest.mark.django_db
def test_a_running_runs_diagnosis_is_kept_so_its_page_never_reads_every_row(make_job) -> None:  # type: ignore[no-untyped-def]
    job = _running(make_job, 60)
    assert curves.warm(job.pk)  # what the task does after a sync
    stored = RunDiagnosis.objects.get(job=job)
    assert stored.fingerprint == curves.diagnosis_key(job, []) and stored.fingerprint.startswith(
        "live|"
    )
    assert not curves.warm(job.pk)  # current: nothing to compute
    columns = curves.metric_columns([job.pk])[str(job.pk)][1]
    assert stored.diagnosis == curves.compute_diagnosis(job, columns, [])
    first, read_rows = _figures(job)
    assert not read_rows and "diagnosis_html" in first

    # A sync brought steps 61–90; its refresh has not run yet.
    _sync_more_steps(job, 90)
    # The job page asks for what its last poll showed (step 70): computed from the rows up to
    # there, and not stored (it is not the run's diagnosis any more).
    _, read_rows = _figures(job, up_to_step=70)
    assert read_rows
    assert RunDiagnosis.objects.get(job=job).fingerprint == stored.fingerprint
    # Any other page: computed from every row once, and kept.
    _, read_rows = _figures(job)
    assert read_rows
    fresh = RunDiagnosis.objects.get(job=job)
    assert fresh.fingerprint == curves.diagnosis_key(job, []) != stored.fingerprint
    columns = curves.metric_columns([job.pk])[str(job.pk)][1]
    assert fresh.diagnosis == curves.compute_diagnosis(job, columns, [])
    _, read_rows = _figures(job)
    assert not read_rows
    _, read_rows = _figures(job, up_to_step=90)  # the job page, caught up
    assert not read_rows


@pytest.mark.django_db(transaction=True)
def test_a_sync_of_a_running_run_has_a_worker_refresh_its_diagnosis(
    make_job, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    job = _running(make_job, 40)
    assert not RunDiagnosis.objects.filter(job=job).exists()
    _sync_more_steps(job, 55)
    job.last_synced_at = timezone.now()
    job.save(
        update_fields=["last_step", "last_synced_at"]
    )  # as the sync saves it: enqueues the refresh
    key = curves.diagnosis_key(job, [])

    def refreshed() -> bool:
        return RunDiagnosis.objects.filter(job=job, fingerprint=key).exists()

    assert wait_until(refreshed, timeout=60)
    _, read_rows = _figures(job)
    assert not read_rows
