"""A worker killed with SIGKILL in the middle of launching a sweep (issue 18, deliverable 3)
launches no duplicate and forgets no run.

The test holds the sweep's second planned run locked, so the worker's advance stops inside its
transaction, after it recorded the first run's job and while it records the second one; then it
kills the worker. Everything that advance wrote is rolled back with its connection; another
worker and beat take the sweep over, and each run is launched at the provider exactly once.
(A worker killed inside a run's own launch task is the single-launch case of
``test_killed_workers``: a sweep's runs are launched by that same task.)"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg
import pytest
from django.db import connection

from jobs.connections import provider_for_connection
from jobs.models import Job, Sweep, SweepRun
from jobs.services import METADATA_KEY
from jobs.sweep_plans import SweepRequest
from jobs.sweeps import sweep_create
from tests.conftest import APP_QUEUES, database_url_for_current_db, wait_until
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

MODEL = "gpt-4o-mini-2024-07-18"


def waiting_on_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0])


def test_worker_killed_mid_sweep_launch_launches_each_run_once(  # type: ignore[no-untyped-def]
    settings: Any, sandbox: Any, sandbox_connection: Any, make_dataset: Any, spawn
) -> None:
    settings.SANDBOX_SECONDS_PER_STEP = 0.02
    sweep = sweep_create(
        request=SweepRequest(
            name="killed",
            connection=sandbox_connection,
            training_dataset=make_dataset(chat_examples(10, seed=2), name="t"),
            validation_dataset=None,
            space={"base_model": [MODEL], "n_epochs": [1], "seed": [1, 2, 3]},
            budget_usd=Decimal(10),
            concurrency=2,
        ),
        user=None,
    )  # its first advance waits in the broker: no worker consumes yet
    gate = psycopg.connect(database_url_for_current_db())
    try:
        gate.execute(
            "SELECT id FROM jobs_sweeprun WHERE sweep_id = %s AND index = 2 FOR UPDATE",
            [sweep.pk],
        )
        doomed = spawn("worker", "doomed", queues="default")
        assert wait_until(lambda: waiting_on_a_lock() == 1, timeout=30), doomed.tail()
        doomed.kill()
    finally:
        gate.rollback()
        gate.close()
    # The dead worker's advance is rolled back: no job, no claim.
    assert wait_until(lambda: waiting_on_a_lock() == 0, timeout=30)
    assert not Job.objects.exists()
    assert not SweepRun.objects.filter(sweep=sweep).exclude(state="planned").exists()

    spawn("worker", "heir", queues=",".join(APP_QUEUES))
    spawn("beat", HEARTBEAT_INTERVAL="1")
    assert wait_until(
        lambda: Sweep.objects.get(pk=sweep.pk).status not in Sweep.ACTIVE, timeout=120
    ), list(SweepRun.objects.filter(sweep=sweep).values("index", "state", "job__status"))
    runs = list(SweepRun.objects.filter(sweep=sweep).select_related("job").order_by("index"))
    assert Sweep.objects.get(pk=sweep.pk).status == "finished"
    assert [(r.state, r.job.status if r.job else None) for r in runs] == [
        ("launched", "succeeded")
    ] * 3
    assert max(r.active_at_launch or 0 for r in runs) <= 2
    theirs = provider_for_connection(sandbox_connection).list_jobs(limit=100).data
    assert sorted((j.metadata or {}).get(METADATA_KEY, "") for j in theirs) == sorted(
        str(r.job_id) for r in runs
    )
    assert Job.objects.count() == 3
