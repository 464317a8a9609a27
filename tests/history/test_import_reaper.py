"""A whole worker killed in the middle of an import: its message stays unacknowledged until
the visibility timeout (far away here), and the reaper on beat sends the import again as soon
as it sees the worker's session gone."""

from __future__ import annotations

import pytest

from datasets.models import Dataset
from jobs.history import import_request
from jobs.models import ImportRun, Job
from tests.conftest import APP_QUEUES, wait_until
from tests.history.helpers import History, assert_matches_provider
from tests.history.test_import_worker import finished

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]


def test_worker_killed_mid_import_reaper_sends_it_again(
    sandbox, sandbox_connection, history: History, spawn
) -> None:  # type: ignore[no-untyped-def]
    doomed = spawn("worker", "doomed", queues="provider", PROVIDER_READ_TIMEOUT="30")
    # Held inside a provider call about the second job (long enough for the kill).
    sandbox.control(
        "faults",
        {"kinds": ["hang"], "count": 1, "hang_seconds": 5, "path": f"{history.succeeded[1]}$"},
    )
    run = import_request(connection=sandbox_connection, user=None)
    assert wait_until(
        lambda: sandbox.control("faults", method="GET")["data"][0]["injected"] == 1, timeout=30
    ), doomed.tail()
    doomed.kill()
    interrupted = ImportRun.objects.get(pk=run.pk)
    assert interrupted.status == "running" and interrupted.jobs_done == 1
    assert interrupted.lease_owner

    heir = spawn("worker", "heir", queues=",".join(APP_QUEUES))
    spawn("beat", HEARTBEAT_INTERVAL="1")
    run = finished(run.pk, timeout=90)
    assert run.status == "succeeded", (run.last_error, heir.tail())
    assert run.jobs_done == run.jobs_total == 6 and run.lease_owner == ""
    assert Job.objects.count() == 6 and Dataset.objects.count() == 3
    assert_matches_provider(sandbox_connection)
