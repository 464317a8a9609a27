"""Provider calls stay out of web requests: cancel, pause, resume, "Sync now" and deleting the
model are asked for on the page and done by a real worker, while the page follows them through
its live JSON. The sandbox holds the provider call to show that the page does not wait for it."""

from __future__ import annotations

import re
from typing import Any

import pytest

from core.models import AuditEntry
from jobs.connections import provider_for_connection
from jobs.models import Job, JobControl, ProviderConnection
from jobs.services import connection_save, job_control_request, job_control_run
from tests.conftest import Sandbox, wait_until
from tests.jobs.test_controls_and_faults import running
from tests.jobs.test_launch_and_poll import launched
from tests.jobs.test_views import (
    DEAD_URL,
    SECRET,
    _catalog,  # noqa: F401 - autouse: job_launch reads the catalog
    make_job,
)
from tests.permissions import client_for, make_user
from tests.sandbox.data import chat_examples

CONFIRM = {"confirm": "yes"}  # what the confirmation page posts


@pytest.fixture
def offline() -> ProviderConnection:
    """A connection to a provider that is not there: calls fail at once."""
    return connection_save(name="Offline", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)


def faults_injected(sandbox: Sandbox) -> int:
    return sum(fault["injected"] for fault in sandbox.control("faults", method="GET")["data"])


def finished(control: JobControl, timeout: float = 60) -> JobControl:
    assert wait_until(lambda: not JobControl.objects.get(pk=control.pk).pending, timeout=timeout), (
        JobControl.objects.filter(pk=control.pk).values().first()
    )
    control.refresh_from_db()
    return control


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancel_answers_at_once_while_a_worker_waits_for_the_provider(
    settings: Any, sandbox: Sandbox, sandbox_connection: ProviderConnection, make_dataset: Any,
    celery_worker: str,
) -> None:  # fmt: skip
    settings.SANDBOX_SECONDS_PER_STEP = 0.05
    job = running(
        launched(
            sandbox_connection, make_dataset(chat_examples(20)), hyperparameters={"n_epochs": 30}
        )
    )
    # The provider holds the cancel: whoever calls it waits two seconds (then gets a 504).
    sandbox.control(
        "faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 2, "path": "/cancel$"}
    )
    here = provider_for_connection(sandbox_connection)  # this process's client for the connection
    before = here.request_count
    member = client_for("member")

    response = member.post(f"/jobs/{job.pk}/cancel/", CONFIRM, follow=True)

    assert response.status_code == 200
    assert "Cancel requested; this page shows the outcome." in response.content.decode()
    assert here.request_count == before  # the request called no provider
    control = JobControl.objects.get(job=job)
    assert control.action == "cancel" and control.requested_by.username == "member-user"
    # The page answered while the cancel is still under way: it is held at the provider.
    assert Job.objects.get(pk=job.pk).status == "running"
    live = member.get(f"/jobs/{job.pk}/live.json").json()
    assert live["control"]["pending"] is True
    assert live["control"]["text"] == "Cancel requested…"
    assert live["control"]["requested_by"] == "member-user"
    html = response.content.decode()
    assert 'data-control-pending="true"' in html and "Cancel requested…" in html

    # The worker does it: its first call was held, its retry cancelled the job.
    control = finished(control)
    assert control.state == "done", control.outcome
    assert control.outcome == "Cancelled at the provider; the job is now cancelled."
    assert faults_injected(sandbox) == 1
    assert Job.objects.get(pk=job.pk).status == "cancelled"
    live = member.get(f"/jobs/{job.pk}/live.json").json()
    assert live["control"] == {
        **live["control"],
        "state": "done",
        "pending": False,
        "text": "Cancelled at the provider; the job is now cancelled.",
    }
    page = member.get(f"/jobs/{job.pk}/").content.decode()
    assert "Cancelled at the provider; the job is now cancelled." in page
    assert "cancel asked by member-user" in page
    assert AuditEntry.objects.get(action="job_cancel", object_id=str(job.pk)).actor == (
        control.requested_by
    )


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_sync_now_and_a_refused_control_are_followed_on_the_page(
    settings: Any, sandbox: Sandbox, sandbox_connection: ProviderConnection, make_dataset: Any,
    celery_worker: str,
) -> None:  # fmt: skip
    job = launched(sandbox_connection, make_dataset(chat_examples(12)))
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    member = client_for("member")
    # "Sync now" while the provider holds the job's status: the page answers, the sync waits.
    sandbox.control(
        "faults", {"kinds": ["hang"], "count": 1, "hang_seconds": 2, "path": r"/jobs/ftjob-\w+$"}
    )
    response = member.post(f"/jobs/{job.pk}/sync/", follow=True)
    assert "Sync requested; this page shows the outcome." in response.content.decode()
    sync = JobControl.objects.get(job=job, action="sync")
    assert member.get(f"/jobs/{job.pk}/live.json").json()["control"]["text"] == "Syncing…"
    sync = finished(sync)
    assert sync.state == "done", sync.outcome
    assert re.fullmatch(r"Synced with the provider: \d+ new events?\.", sync.outcome)
    job.refresh_from_db()
    assert job.status == "succeeded" and job.is_terminal
    # A finished job: the page still follows a control asked for now (the provider holds the
    # cancel call for a while, so the page is rendered before the worker has its answer)...
    sandbox.control(
        "faults",
        {"kinds": ["hang"], "count": 1, "hang_seconds": 3, "path": r"/jobs/ftjob-\w+/cancel$"},
    )
    pending_page = member.post(f"/jobs/{job.pk}/cancel/", CONFIRM, follow=True).content.decode()
    assert 'data-terminal="true"' in pending_page and 'data-control-pending="true"' in pending_page
    # ...here one the provider refuses (the job is over): the page says why, nothing breaks.
    cancel = finished(JobControl.objects.get(job=job, action="cancel"))
    assert cancel.state == "failed"
    assert cancel.outcome.startswith("The provider refused to cancel this job:")
    live = member.get(f"/jobs/{job.pk}/live.json").json()["control"]
    assert live["state"] == "failed" and live["text"] == cancel.outcome
    page = member.get(f"/jobs/{job.pk}/").content.decode()
    assert 'data-control-state="failed"' in page and 'data-control-pending="false"' in page


@pytest.mark.django_db
def test_a_control_asked_twice_while_under_way_is_asked_once(
    offline: ProviderConnection,
) -> None:
    job = make_job(offline, None)
    member = client_for("member")
    for _ in range(2):
        assert member.post(f"/jobs/{job.pk}/pause/", CONFIRM).status_code == 302
    assert JobControl.objects.filter(job=job, action="pause").count() == 1
    assert AuditEntry.objects.filter(action="job_pause").count() == 1
    # Another action is another request.
    member.post(f"/jobs/{job.pk}/cancel/", CONFIRM)
    assert JobControl.objects.filter(job=job).count() == 2


@pytest.mark.django_db
def test_a_failed_control_records_the_providers_error(
    offline: ProviderConnection, settings: Any
) -> None:
    """What the task does, run here: the provider is unreachable, so the control fails with
    the reason, once; running it again (a duplicate delivery) changes nothing."""
    settings.PROVIDER_MAX_RETRIES = 0
    job = make_job(offline, None)
    control = job_control_request(job=job, user=make_user("member"), action="cancel")
    done = job_control_run(control_id=control.pk)
    assert done is not None and done.state == "failed" and done.finished_at is not None
    assert done.outcome.startswith("The provider refused to cancel this job: Could not connect")
    assert job_control_run(control_id=control.pk) is None
    assert JobControl.objects.get(pk=control.pk).outcome == done.outcome
    page = client_for("member").get(f"/jobs/{job.pk}/").content.decode()
    assert 'class="jb-banner jb-banner-warn" role="status" data-control-state="failed"' in page


@pytest.mark.django_db
def test_a_control_that_cannot_apply_is_refused_at_once(offline: ProviderConnection) -> None:
    member = client_for("member")
    pending = make_job(offline, None, status="pending", provider_job_id=None)
    page = member.post(f"/jobs/{pending.pk}/cancel/", CONFIRM, follow=True).content.decode()
    assert "This job has not reached the provider yet." in page
    job = make_job(offline, None)
    page = member.post(f"/jobs/{job.pk}/delete-model/", {"confirm": "on"}, follow=True)
    assert "This job has no fine-tuned model." in page.content.decode()
    ProviderConnection.objects.filter(pk=offline.pk).update(enabled=False)
    page = member.post(f"/jobs/{job.pk}/resume/", follow=True).content.decode()
    assert "is disabled: the job cannot be resumed." in page
    assert not JobControl.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="job_").exists()
