"""Controls, concurrency and provider faults. The sandbox injects the faults; nothing of ours is
mocked."""

from __future__ import annotations

import threading
import time

import pytest

from jobs.connections import provider_for_connection
from jobs.models import Job, JobControl, JobEvent, MetricPoint
from jobs.services import job_control_request, job_control_run
from jobs.sync import job_sync
from sandbox.engine import job_advance
from tests.conftest import wait_until
from tests.jobs.test_launch_and_poll import launched, provider_events, settled
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def running(job: Job, timeout: float = 30) -> Job:
    def synced_and_running() -> bool:
        if Job.objects.get(pk=job.pk).provider_job_id:
            job_sync(job_id=job.pk)
        return Job.objects.get(pk=job.pk).status == "running"

    assert wait_until(synced_and_running, timeout=timeout, interval=0.3)
    job.refresh_from_db()
    return job


def control(job: Job, user: object, action: str) -> Job:
    """Ask for a control and see it done: here, or by the worker when it got there first."""
    asked = job_control_request(job=job, user=user, action=action)  # type: ignore[arg-type]
    job_control_run(control_id=asked.pk)
    assert wait_until(lambda: not JobControl.objects.get(pk=asked.pk).pending, timeout=60)
    asked.refresh_from_db()
    assert asked.state == "done", asked.outcome
    return Job.objects.get(pk=job.pk)


def test_pause_resume_cancel_with_audit(
    settings, sandbox_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.05
    job = running(
        launched(
            sandbox_connection, make_dataset(chat_examples(20)), hyperparameters={"n_epochs": 30}
        )
    )
    member = job.created_by
    assert control(job, member, "pause").status == "paused"
    steps = MetricPoint.objects.filter(job=job).count()
    # The provider's run clock stops while paused: brought up to an hour later, the job has
    # no new step to sync.
    job_advance(job.provider_job_id, now=time.time() + 3600)
    job_sync(job_id=job.pk)
    assert MetricPoint.objects.filter(job=job).count() == steps
    assert control(job, member, "resume").status in ("queued", "running")
    running(job)
    cancelled = control(job, member, "cancel")
    assert cancelled.status == "cancelled"
    settled(job)
    from core.models import AuditEntry

    actions = list(
        AuditEntry.objects.filter(object_id=str(job.pk))
        .order_by("at")
        .values_list("action", "actor")
    )
    assert actions == [
        ("job_launched", member.pk), ("job_pause", member.pk), ("job_resume", member.pk), ("job_cancel", member.pk),
    ]  # fmt: skip


def test_idle_running_job_costs_two_requests_per_sync(
    settings, sandbox_connection, make_dataset, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.05
    job = running(
        launched(
            sandbox_connection, make_dataset(chat_examples(20)), hyperparameters={"n_epochs": 30}
        )
    )
    control(job, None, "pause")
    job_sync(job_id=job.pk)  # catch up with everything before measuring
    provider = provider_for_connection(job.connection)
    before = provider.request_count
    outcome = job_sync(job_id=job.pk)
    assert outcome.ran and outcome.new_events == 0
    assert provider.request_count - before == 2
    control(job, None, "cancel")


def test_two_racing_syncs_store_nothing_twice(
    settings, sandbox_connection, make_dataset, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    job = launched(
        sandbox_connection, make_dataset(chat_examples(40)), hyperparameters={"n_epochs": 3}
    )
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    job.refresh_from_db()
    # Bypass the per-job lock's protection by racing the store itself: run two syncs in
    # threads, then a third sequentially; counts must equal the provider's.
    threads = [threading.Thread(target=job_sync, kwargs={"job_id": job.pk}) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    Job.objects.filter(pk=job.pk).update(last_event_id="")  # forget the cursor: refetch everything
    job_sync(job_id=job.pk)
    job = settled(job)
    assert JobEvent.objects.filter(job=job).count() == len(provider_events(job))
    assert MetricPoint.objects.filter(job=job).count() == job.total_steps == 120


def test_provider_404_marks_the_job_lost(sandbox_connection, make_dataset, celery_worker) -> None:  # type: ignore[no-untyped-def]
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    Job.objects.filter(pk=job.pk).update(provider_job_id="ftjob-gone000000000000000000")
    outcome = job_sync(job_id=job.pk)
    job.refresh_from_db()
    assert outcome.status == job.status == "lost" and job.next_poll_at is None
    assert Job.objects.filter(pk=job.pk).exists()


def test_errors_push_the_next_poll_back(
    settings, sandbox, sandbox_connection, make_dataset, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_MAX_RETRIES = 0
    settings.POLL_INTERVAL = 10
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    sandbox.control("faults", {"kinds": ["503"], "count": 2, "path": "fine_tuning/jobs/ftjob"})
    from django.utils import timezone

    def delay_after_failing_sync() -> tuple[float, float]:
        """The next poll's delay, bracketed by the times before and after the sync."""
        before = timezone.now()
        job_sync(job_id=job.pk)
        after = timezone.now()
        job.refresh_from_db()
        return (
            (job.next_poll_at - after).total_seconds(),
            (job.next_poll_at - before).total_seconds(),
        )

    # Backoff: POLL_INTERVAL × 2^failures, ±20 % jitter.
    low, high = delay_after_failing_sync()
    assert job.poll_failures == 1 and "503" in job.last_sync_error
    assert high >= 16 and low <= 24
    second_low, second_high = delay_after_failing_sync()
    assert job.poll_failures == 2
    assert second_high >= 32 and second_low <= 48
    job_sync(job_id=job.pk)
    job.refresh_from_db()
    assert job.poll_failures == 0 and job.last_sync_error == ""


@pytest.mark.slow
def test_twenty_jobs_converge_through_thirty_percent_faults(
    settings, sandbox, sandbox_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.01
    datasets = [make_dataset(chat_examples(12, seed=i), name=f"d{i}") for i in range(4)]
    sandbox.control(
        "faults",
        {
            "kinds": ["500", "429", "hang", "drop"],
            "rate": 0.3,
            "retry_after": 0.2,
            "hang_seconds": 4,
        },
    )
    jobs = [
        launched(sandbox_connection, datasets[i % 4], hyperparameters={"n_epochs": 2}, seed=i)
        for i in range(20)
    ]
    for job in jobs:
        settled(job, timeout=240)
    injected = sandbox.control("faults", method="GET")["data"][0]["injected"]
    sandbox.control("faults", method="DELETE")
    assert injected >= 20
    provider = provider_for_connection(sandbox_connection)
    theirs = {j.id: j for j in provider.list_jobs(limit=100).data}
    assert len(theirs) == 20  # no duplicate paid jobs despite retried launches
    for job in jobs:
        job.refresh_from_db()
        assert job.status == theirs[job.provider_job_id].status == "succeeded"
        assert JobEvent.objects.filter(job=job).count() == len(provider_events(job))
        assert MetricPoint.objects.filter(job=job).count() == job.total_steps == 24


@pytest.mark.slow
def test_worker_killed_mid_sync_loses_nothing(
    settings, sandbox, sandbox_connection, make_dataset, spawn
) -> None:  # type: ignore[no-untyped-def]
    queues = "default,polling,validation,provider,doomed"
    # A worker of our own, killed while its sync is stuck inside a provider call. The sync goes
    # to a queue only our workers read, so no other worker can take it.
    doomed = spawn(
        "worker", "doomed", queues=queues, CELERY_VISIBILITY_TIMEOUT="2", PROVIDER_READ_TIMEOUT="30"
    )
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    Job.objects.filter(pk=job.pk).update(next_poll_at=None)  # only our task syncs it for now
    # Held long enough for the kill below (which follows as soon as the hold starts).
    sandbox.control("faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 5, "path": "/events"})
    from jobs.tasks import job_sync_task

    job_sync_task.apply_async((str(job.pk),), queue="doomed")
    assert wait_until(
        lambda: sandbox.control("faults", method="GET")["data"][0]["injected"] == 1, timeout=20
    ), doomed.tail()
    doomed.kill()
    assert not JobEvent.objects.filter(job=job).exists()  # it died before storing anything
    heir = spawn("worker", "heir", queues=queues, CELERY_VISIBILITY_TIMEOUT="2")
    # The unacknowledged task is delivered again once its visibility timeout passes.
    assert wait_until(lambda: JobEvent.objects.filter(job=job).exists(), timeout=60), heir.tail()
    spawn("beat")  # then polling finishes the job as usual
    job = settled(job, timeout=60)
    assert job.status == "succeeded"
    assert JobEvent.objects.filter(job=job).count() == len(provider_events(job))
    assert MetricPoint.objects.filter(job=job).count() == job.total_steps
