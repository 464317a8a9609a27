"""Controls, concurrency and provider faults. The sandbox injects the faults; nothing of ours is
mocked."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from jobs.connections import provider_for_connection
from jobs.models import Job, JobEvent, MetricPoint
from jobs.services import job_cancel, job_pause, job_resume
from jobs.sync import job_sync
from tests.conftest import start_beat, start_worker, stop_process, wait_for_worker, wait_until
from tests.jobs.test_launch_and_poll import launched, provider_events, settled
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.sandbox.conftest import KEY
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
AUTH = {"Authorization": f"Bearer {KEY}"}


def faults(sandbox_url: str, body: dict | None = None, method: str = "POST") -> dict:
    response = httpx.request(
        method, f"{sandbox_url.removesuffix('/v1')}/control/faults", headers=AUTH, json=body
    )
    response.raise_for_status()
    return response.json()


def running(job: Job, timeout: float = 30) -> Job:
    def synced_and_running() -> bool:
        if Job.objects.get(pk=job.pk).provider_job_id:
            job_sync(job_id=job.pk)
        return Job.objects.get(pk=job.pk).status == "running"

    assert wait_until(synced_and_running, timeout=timeout, interval=0.3)
    job.refresh_from_db()
    return job


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
    assert job_pause(job=job, user=member).status == "paused"
    steps = MetricPoint.objects.filter(job=job).count()
    time.sleep(1.5)
    job_sync(job_id=job.pk)
    assert MetricPoint.objects.filter(job=job).count() == steps
    assert job_resume(job=job, user=member).status in ("queued", "running")
    running(job)
    cancelled = job_cancel(job=job, user=member)
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
    job_pause(job=job, user=None)
    job_sync(job_id=job.pk)  # catch up with everything before measuring
    provider = provider_for_connection(job.connection)
    before = provider.request_count
    outcome = job_sync(job_id=job.pk)
    assert outcome.ran and outcome.new_events == 0
    assert provider.request_count - before == 2
    job_cancel(job=job, user=None)


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
    settings, sandbox_url, sandbox_connection, make_dataset, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    settings.PROVIDER_MAX_RETRIES = 0
    settings.POLL_INTERVAL = 10
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    faults(sandbox_url, {"kinds": ["503"], "count": 2, "path": "fine_tuning/jobs/ftjob"})
    from django.utils import timezone

    job_sync(job_id=job.pk)
    job.refresh_from_db()
    assert job.poll_failures == 1 and "503" in job.last_sync_error
    first_delay = (job.next_poll_at - timezone.now()).total_seconds()
    job_sync(job_id=job.pk)
    job.refresh_from_db()
    second_delay = (job.next_poll_at - timezone.now()).total_seconds()
    assert job.poll_failures == 2 and 14 < first_delay < 26 and second_delay > first_delay
    job_sync(job_id=job.pk)
    job.refresh_from_db()
    assert job.poll_failures == 0 and job.last_sync_error == ""


@pytest.mark.slow
def test_twenty_jobs_converge_through_thirty_percent_faults(
    settings, sandbox_url, sandbox_connection, make_dataset, celery_worker, celery_beat
) -> None:  # type: ignore[no-untyped-def]
    settings.SANDBOX_SECONDS_PER_STEP = 0.01
    datasets = [make_dataset(chat_examples(12, seed=i), name=f"d{i}") for i in range(4)]
    faults(
        sandbox_url,
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
    injected = faults(sandbox_url, method="GET")["data"][0]["injected"]
    faults(sandbox_url, method="DELETE")
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
    settings, sandbox_url, sandbox_connection, make_dataset, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    queues = "default,polling,validation,doomed"
    # A worker of our own, killed while its sync is stuck inside a provider call. The sync goes
    # to a queue only our workers read, so no other worker can take it.
    log = tmp_path / "doomed.log"
    doomed = start_worker(
        log,
        "doomed@localhost",
        queues=queues,
        CELERY_VISIBILITY_TIMEOUT="2",
        PROVIDER_READ_TIMEOUT="30",
    )
    wait_for_worker(doomed, "doomed@localhost", log)
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    Job.objects.filter(pk=job.pk).update(next_poll_at=None)  # only our task syncs it for now
    faults(sandbox_url, {"kinds": ["hang"], "count": 1, "hang_seconds": 20, "path": "/events"})
    from jobs.tasks import job_sync_task

    job_sync_task.apply_async((str(job.pk),), queue="doomed")
    assert wait_until(
        lambda: faults(sandbox_url, method="GET")["data"][0]["injected"] == 1, timeout=20
    )
    doomed.send_signal(signal.SIGKILL)
    stop_process(doomed)
    assert not JobEvent.objects.filter(job=job).exists()  # it died before storing anything
    log2 = tmp_path / "heir.log"
    heir = start_worker(log2, "heir@localhost", queues=queues, CELERY_VISIBILITY_TIMEOUT="2")
    beat = None
    try:
        wait_for_worker(heir, "heir@localhost", log2)
        # The unacknowledged task is delivered again once its visibility timeout passes.
        assert wait_until(lambda: JobEvent.objects.filter(job=job).exists(), timeout=60), (
            log2.read_text()[-3000:]
        )
        beat = start_beat(tmp_path)  # then polling finishes the job as usual
        job = settled(job, timeout=60)
    finally:
        if beat is not None:
            stop_process(beat)
        stop_process(heir)
    assert job.status == "succeeded"
    assert JobEvent.objects.filter(job=job).count() == len(provider_events(job))
    assert MetricPoint.objects.filter(job=job).count() == job.total_steps
