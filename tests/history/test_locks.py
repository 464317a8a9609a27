"""The advisory locks that keep one launch, one sync and one import step at a time: a second
caller backs off instead of waiting, and a dead holder's lock goes with its session."""

from __future__ import annotations

import pytest

from jobs.connections import provider_for_connection
from jobs.locks import AdvisoryLock
from jobs.models import Job
from jobs.services import LAUNCH_LOCK, job_launch_run
from jobs.sync import SYNC_LOCK, job_sync
from tests.history.helpers import Elsewhere
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_launch_running_elsewhere_is_left_to_it(sandbox_connection, make_dataset) -> None:  # type: ignore[no-untyped-def]
    # Made as job_launch makes it, without queueing its task: only this test launches it.
    job = Job.objects.create(
        connection=sandbox_connection,
        base_model="gpt-4o-mini",
        training_dataset=make_dataset(chat_examples(12)),
    )
    provider = provider_for_connection(sandbox_connection)
    with Elsewhere(LAUNCH_LOCK, job.pk):
        assert job_launch_run(job_id=job.pk).provider_job_id is None
        assert provider.list_jobs(limit=100).data == []
        assert Job.objects.get(pk=job.pk).status == "pending"
    launched = job_launch_run(job_id=job.pk)
    assert launched.provider_job_id and len(provider.list_jobs(limit=100).data) == 1
    # Run again after losing the provider id (a crash): found by its metadata, not doubled.
    Job.objects.filter(pk=job.pk).update(provider_job_id=None, status="launching")
    assert job_launch_run(job_id=job.pk).provider_job_id == launched.provider_job_id
    assert len(provider.list_jobs(limit=100).data) == 1

    with Elsewhere(SYNC_LOCK, job.pk):
        outcome = job_sync(job_id=job.pk)
        assert not outcome.ran and outcome.error == ""
    assert job_sync(job_id=job.pk).ran


def test_lock_is_reentrant_free() -> None:
    with AdvisoryLock("tests", 1) as first:
        assert first
        with Elsewhere("tests", 2), AdvisoryLock("tests", 2) as second:
            assert not second
    with AdvisoryLock("tests", 1) as again:
        assert again
