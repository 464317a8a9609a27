"""Issue 14, item 5: a job whose page is open is synced every few seconds, within a budget per
connection, and back on the normal interval once nobody watches. Real sandbox over HTTP, real
PostgreSQL; the clock of the budget is injected, never slept through."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from jobs.models import Job, ProviderConnection
from jobs.services import connection_save, job_launch_run
from jobs.sync import job_sync
from jobs.watching import connection_quick_sync_take, job_watch
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: launches read the catalog
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

QUICK, NORMAL = timedelta(seconds=3), timedelta(seconds=15)


@pytest.fixture
def intervals(settings: Any) -> None:
    settings.POLL_INTERVAL = 15
    settings.WATCHED_POLL_INTERVAL = 3
    settings.JOB_WATCH_SECONDS = 30
    settings.WATCHED_SYNC_WINDOW = 60
    settings.WATCHED_SYNC_LIMIT = 40


@pytest.mark.django_db
def test_the_budget_per_connection_holds(settings: Any, intervals: None) -> None:
    settings.WATCHED_SYNC_LIMIT = 3
    one = connection_save(name="one", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="k")
    two = connection_save(name="two", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="k")
    t0 = timezone.now()
    taken = [connection_quick_sync_take(connection_id=one.pk, now=t0 + timedelta(seconds=i))
             for i in range(5)]  # fmt: skip
    assert taken == [True, True, True, False, False]
    # Another connection has its own budget.
    assert connection_quick_sync_take(connection_id=two.pk, now=t0)
    # Still the same window one second before it ends; a new one after.
    assert not connection_quick_sync_take(connection_id=one.pk, now=t0 + timedelta(seconds=59))
    assert connection_quick_sync_take(connection_id=one.pk, now=t0 + timedelta(seconds=60))
    one.refresh_from_db()
    assert one.watch_window_syncs == 1 and one.watch_window_started_at == t0 + timedelta(seconds=60)
    # 0 turns quick syncs off.
    settings.WATCHED_SYNC_LIMIT = 0
    assert not connection_quick_sync_take(connection_id=two.pk, now=t0 + timedelta(hours=1))


def launched_job(connection: ProviderConnection, dataset: Any) -> Job:
    """Created at the sandbox (directly: no worker needed), slow enough to stay active."""
    job = Job.objects.create(
        connection=connection, base_model="gpt-4o-mini", training_dataset=dataset,
        requested_hyperparameters={"n_epochs": 3},
    )  # fmt: skip
    job_launch_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.provider_job_id and job.status not in Job.TERMINAL, job.launch_error
    return job


def synced_delay(job: Job) -> timedelta:
    outcome = job_sync(job_id=job.pk)
    assert outcome.ran and not outcome.error, outcome
    job.refresh_from_db()
    assert job.status not in Job.TERMINAL and job.next_poll_at and job.last_synced_at
    return job.next_poll_at - job.last_synced_at


@pytest.mark.django_db(transaction=True)
def test_a_watched_job_is_synced_quickly_within_the_budget(
    settings: Any, intervals: None, sandbox_connection: ProviderConnection, make_dataset: Any
) -> None:
    settings.SANDBOX_SECONDS_PER_STEP = 60  # stays running for the whole test
    settings.WATCHED_SYNC_LIMIT = 2
    dataset = make_dataset(chat_examples(12))
    watched, unwatched, third = (launched_job(sandbox_connection, dataset) for _ in range(3))
    viewer = client_for("viewer")
    # Nobody looks: the normal interval.
    assert synced_delay(unwatched) == NORMAL
    # The page of `watched` polls its live JSON: marked watched, and synced every 3 s.
    assert viewer.get(f"/jobs/{watched.pk}/live.json").status_code == 200
    watched.refresh_from_db()
    assert watched.watched_until and watched.watched_until > timezone.now()
    assert synced_delay(watched) == QUICK
    assert synced_delay(unwatched) == NORMAL
    # A third watched job on the same connection: the budget (2 per window) is spent.
    assert viewer.get(f"/jobs/{third.pk}/live.json").status_code == 200
    assert synced_delay(third) == QUICK
    assert synced_delay(watched) == NORMAL
    # The watch lapses when the page stops polling: back to the normal interval.
    Job.objects.filter(pk=third.pk).update(watched_until=timezone.now() - timedelta(seconds=1))
    settings.WATCHED_SYNC_LIMIT = 40
    assert synced_delay(third) == NORMAL


@pytest.mark.django_db
def test_opening_the_page_pulls_the_next_poll_in(intervals: None) -> None:
    connection = connection_save(
        name="c", kind="sandbox", base_url="http://127.0.0.1:9/v1", api_key="k"
    )
    now = timezone.now()
    due_later = Job.objects.create(connection=connection, base_model="m", status="running",
                                   provider_job_id="ftjob-a", next_poll_at=now + NORMAL)  # fmt: skip
    claimed = Job.objects.create(connection=connection, base_model="m", status="running",
                                 provider_job_id="ftjob-b", next_poll_at=now + timedelta(seconds=60))  # fmt: skip
    failing = Job.objects.create(connection=connection, base_model="m", status="running",
                                 provider_job_id="ftjob-c", next_poll_at=now + NORMAL,
                                 poll_failures=2)  # fmt: skip
    done = Job.objects.create(connection=connection, base_model="m", status="succeeded",
                              provider_job_id="ftjob-d", next_poll_at=None)  # fmt: skip
    for job in (due_later, claimed, failing, done):
        job_watch(job_id=job.pk, now=now)
    values = dict(Job.objects.values_list("provider_job_id", "next_poll_at"))
    assert values["ftjob-a"] == now  # due at once
    assert values["ftjob-b"] == now + timedelta(seconds=60)  # its sync is queued: left alone
    assert values["ftjob-c"] == now + NORMAL  # backing off after failures: left alone
    assert values["ftjob-d"] is None
    assert Job.objects.get(pk=done.pk).watched_until is None  # finished: nothing to watch
    # A poll a second later does not write again; one past half the watch renews it.
    job_watch(job_id=due_later.pk, now=now + timedelta(seconds=1))
    assert Job.objects.get(pk=due_later.pk).watched_until == now + timedelta(seconds=30)
    job_watch(job_id=due_later.pk, now=now + timedelta(seconds=16))
    assert Job.objects.get(pk=due_later.pk).watched_until == now + timedelta(seconds=46)
