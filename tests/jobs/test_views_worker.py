"""Through the pages, against the sandbox over real HTTP with a real Celery worker and beat:
a launch from the form that succeeds, the job page afterwards, and the controls."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from core.models import AuditEntry
from datasets.models import Dataset
from jobs.models import Checkpoint, Job, JobControl, JobEvent, ProviderConnection
from tests.conftest import wait_until
from tests.jobs.test_controls_and_faults import running
from tests.jobs.test_launch_and_poll import settled
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse fixture
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]
MINI = "gpt-4o-mini-2024-07-18"


def launch_form(
    connection: ProviderConnection, dataset: Dataset, **overrides: Any
) -> dict[str, Any]:
    data = {
        "connection": connection.pk,
        "base_model": MINI,
        "training_dataset": dataset.pk,
        "method": "supervised",
        "n_epochs": "2",
        "suffix": "ui",
        "name": "From the form",
    }
    data.update(overrides)
    return data


def done(client: Any, job: Job, action: str, data: dict[str, str] | None = None) -> JobControl:
    """Ask for a control on the page and wait until the worker has done it (or failed)."""
    before = set(JobControl.objects.filter(job=job).values_list("pk", flat=True))
    # Cancel and pause act only once confirmed (tests/jobs/test_confirmations.py).
    confirm = {"confirm": "yes"} if action in ("cancel", "pause") else {}
    assert client.post(f"/jobs/{job.pk}/{action}/", {**confirm, **(data or {})}).status_code == 302
    control = JobControl.objects.filter(job=job).exclude(pk__in=before).get()
    assert wait_until(lambda: not JobControl.objects.get(pk=control.pk).pending, timeout=60)
    control.refresh_from_db()
    return control


def test_launch_from_the_form_to_success(
    sandbox_key: str,
    sandbox_connection: ProviderConnection,
    make_dataset: Callable[..., Dataset],
    celery_worker: str,
    celery_beat: Any,
) -> None:
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    response = member.post("/jobs/new/", launch_form(sandbox_connection, dataset))
    assert response.status_code == 302
    job = Job.objects.get()
    assert response["Location"] == f"/jobs/{job.pk}/"
    job = settled(job)
    assert job.status == "succeeded", (job.error, job.launch_error, job.last_sync_error)
    assert job.fine_tuned_model.startswith(f"ft:{MINI}:sandbox:ui:")

    html = member.get(f"/jobs/{job.pk}/").content.decode()
    assert "Succeeded" in html and job.fine_tuned_model in html
    checkpoints = list(Checkpoint.objects.filter(job=job))
    assert checkpoints and all(c.model_name in html for c in checkpoints)
    assert "The job has successfully completed" in html or "successfully" in html
    assert html.count('<tr><td class="jb-time">') == min(
        200, JobEvent.objects.filter(job=job).count()
    )
    assert f"{job.trained_tokens:,}" in html and 'data-terminal="true"' in html
    live = member.get(f"/jobs/{job.pk}/live.json").json()
    assert live["status"] == "succeeded" and live["terminal"] is True
    assert live["fine_tuned_model"] == job.fine_tuned_model

    # Continue training: the model is offered on this connection's launch form...
    new_page = member.get("/jobs/new/").content.decode()
    assert (
        f'<option value="{job.fine_tuned_model}" data-connection="{sandbox_connection.pk}">'
        in new_page
    )
    # ...until it is deleted at the provider, through the confirmation page.
    assert "Delete fine-tuned model" in html
    confirm = member.get(f"/jobs/{job.pk}/delete-model/")
    assert confirm.status_code == 200 and job.fine_tuned_model in confirm.content.decode()
    deleted = done(member, job, "delete-model", {"confirm": "on"})
    assert deleted.state == "done" and deleted.action == "delete_model"
    page = member.get(f"/jobs/{job.pk}/").content.decode()
    assert f"Deleted {job.fine_tuned_model} at the provider." in page
    assert "Deleted at the provider" in page and "Delete fine-tuned model" not in page
    entry = AuditEntry.objects.get(action="model_deleted", object_id=str(job.pk))
    assert entry.actor.username == "member-user"
    assert job.fine_tuned_model not in member.get("/jobs/new/").content.decode()
    assert sandbox_key not in page and sandbox_key not in new_page


def test_controls_through_the_pages(
    settings: Any,
    sandbox_connection: ProviderConnection,
    make_dataset: Callable[..., Dataset],
    celery_worker: str,
    celery_beat: Any,
) -> None:
    settings.SANDBOX_SECONDS_PER_STEP = 0.05
    dataset = make_dataset(chat_examples(20))
    member = client_for("member")
    member.post("/jobs/new/", launch_form(sandbox_connection, dataset, n_epochs="30"))
    job = running(Job.objects.get())
    user_id = job.created_by_id

    def controls() -> set[str]:
        html = member.get(f"/jobs/{job.pk}/").content.decode()
        return set(re.findall(rf'action="/jobs/{job.pk}/([a-z]+)/"', html)) - {"guardrails"}

    assert controls() == {"cancel", "pause", "sync", "archive"}
    paused = done(member, job, "pause")
    assert paused.outcome == "Paused at the provider; the job is now paused."
    assert Job.objects.get(pk=job.pk).status == "paused"
    assert controls() == {"cancel", "resume", "sync", "archive"}
    done(member, job, "resume")
    assert Job.objects.get(pk=job.pk).status in ("queued", "running")
    running(job)
    synced = done(member, job, "sync").outcome
    assert "Synced with the provider" in synced or "already running" in synced
    # Progress comes through the live JSON while it runs.
    live = member.get(f"/jobs/{job.pk}/live.json").json()
    assert live["status"] == "running" and live["terminal"] is False
    assert live["progress"]["total_steps"] and live["events"]
    cancelled = done(member, job, "cancel")
    assert cancelled.outcome == "Cancelled at the provider; the job is now cancelled."
    assert Job.objects.get(pk=job.pk).status == "cancelled"
    # A second cancel is refused by the provider, and the page says so (no 500).
    assert wait_until(lambda: Job.objects.get(pk=job.pk).next_poll_at is None, timeout=30)
    again = done(member, job, "cancel")
    assert again.state == "failed"
    page = member.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200 and "The provider refused to cancel this job" in (
        page.content.decode()
    )
    assert controls() == {"sync", "archive"}
    actions = list(
        AuditEntry.objects.filter(object_id=str(job.pk))
        .order_by("at")
        .values_list("action", "actor")
    )
    # Who asked for each, the refused second cancel included.
    assert actions == [
        ("job_launched", user_id),
        ("job_pause", user_id),
        ("job_resume", user_id),
        ("job_sync", user_id),
        ("job_cancel", user_id),
        ("job_cancel", user_id),
    ]
