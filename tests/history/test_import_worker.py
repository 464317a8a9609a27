"""Imports through the queue: started from the connection page with its live progress, a
worker killed in the middle of one (the task is delivered again and finishes the job), and a
provider outage the task rides out with retries."""

from __future__ import annotations

import pytest

from datasets.models import Dataset
from jobs.history import import_request
from jobs.models import ImportRun, Job
from jobs.tasks import import_run_task
from tests.conftest import wait_until
from tests.history.helpers import History, assert_matches_provider
from tests.permissions import client_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def finished(run_id: int, timeout: float = 90) -> ImportRun:
    assert wait_until(
        lambda: ImportRun.objects.get(pk=run_id).status in ("succeeded", "failed"),
        timeout=timeout,
    ), ImportRun.objects.filter(pk=run_id).values().first()
    return ImportRun.objects.get(pk=run_id)


def test_import_from_the_page_with_progress(
    sandbox_connection, history: History, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    member = client_for("member")
    page = member.get(f"/jobs/connections/{sandbox_connection.pk}/history/")
    assert page.status_code == 200 and b"Import history" in page.content
    response = member.post(f"/jobs/connections/{sandbox_connection.pk}/import/")
    assert response.status_code == 302
    run = ImportRun.objects.get()
    assert run.started_by.username == "member-user"

    # The page shows the active run with a progress bar polling the JSON view.
    page = member.get(f"/jobs/connections/{sandbox_connection.pk}/history/").content.decode()
    if ImportRun.objects.get(pk=run.pk).is_active:
        assert f'data-status-url="/jobs/imports/{run.pk}/status.json"' in page
        assert "<progress" in page

    run = finished(run.pk)
    assert run.status == "succeeded", run.last_error
    status = member.get(f"/jobs/imports/{run.pk}/status.json").json()
    assert status["active"] is False and status["percent"] == 100.0
    assert (status["jobs_done"], status["jobs_total"], status["files_downloaded"]) == (6, 6, 3)
    assert status["files_missing"] == 1 and status["errors"] == 0
    assert_matches_provider(sandbox_connection)
    # The worker validates the imported files as it does uploads.
    assert wait_until(
        lambda: set(Dataset.objects.values_list("status", flat=True)) == {"valid"}, timeout=60
    )
    html = member.get(f"/jobs/connections/{sandbox_connection.pk}/history/").content.decode()
    assert "Succeeded" in html and "6/6" in html and "Resume the import" not in html


@pytest.mark.slow
def test_worker_killed_mid_import_is_delivered_again(
    sandbox, sandbox_connection, history: History, spawn
) -> None:  # type: ignore[no-untyped-def]
    queues = "default,polling,validation,provider,doomed"
    doomed = spawn(
        "worker", "doomed", queues=queues, CELERY_VISIBILITY_TIMEOUT="2", PROVIDER_READ_TIMEOUT="30"
    )
    # The worker gets stuck inside a provider call about the second job, then dies (held long
    # enough for the kill, which follows as soon as the hold starts).
    sandbox.control(
        "faults",
        {"kinds": ["hang"], "count": 1, "hang_seconds": 5, "path": f"{history.succeeded[1]}$"},
    )
    run = import_request(connection=sandbox_connection, user=None, enqueue=False)
    import_run_task.apply_async((run.pk,), queue="doomed")
    assert wait_until(
        lambda: sandbox.control("faults", method="GET")["data"][0]["injected"] == 1, timeout=30
    ), doomed.tail()
    doomed.kill()
    interrupted = ImportRun.objects.get(pk=run.pk)
    assert interrupted.status == "running" and interrupted.jobs_done == 1

    heir = spawn("worker", "heir", queues=queues, CELERY_VISIBILITY_TIMEOUT="2")
    # The unacknowledged task comes back once its visibility timeout passes; should the
    # broker not give it back (the dead worker may hold kombu's restore lock), the reaper on
    # beat sends the work again once its lease expires, as in production.
    spawn("beat", HEARTBEAT_INTERVAL="1")
    run = finished(run.pk, timeout=180)
    assert run.status == "succeeded", (run.last_error, heir.tail())
    assert ImportRun.objects.count() == 1 and run.jobs_done == run.jobs_total == 6
    assert Job.objects.count() == 6 and Dataset.objects.count() == 3
    assert_matches_provider(sandbox_connection)


@pytest.mark.slow
def test_provider_outage_during_a_queued_import_is_ridden_out(
    sandbox, sandbox_connection, history: History, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    # More failures than the worker's provider client retries: the step fails, the task
    # comes back a few seconds later and carries on.
    sandbox.control("faults", {"kinds": ["503"], "count": 6, "path": "/checkpoints"})
    run = import_request(connection=sandbox_connection, user=None)
    run = finished(run.pk, timeout=120)
    assert run.status == "succeeded"
    assert "503" in run.last_error and run.failures == 0
    assert sandbox.control("faults", method="GET")["data"][0]["injected"] == 6
    assert_matches_provider(sandbox_connection)
