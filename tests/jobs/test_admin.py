from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from jobs import models as job_models
from jobs.models import Job, ProviderConnection
from tests.jobs.test_views import _catalog  # noqa: F401 - autouse: job_launch reads the catalog
from tests.permissions import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_jobs_model_is_in_the_admin() -> None:
    registered = {m for m in site._registry if m._meta.app_label == "jobs"}
    declared = {
        m for m in vars(job_models).values()
        if isinstance(m, type) and issubclass(m, job_models.models.Model) and m._meta.app_label == "jobs"
    }  # fmt: skip
    assert registered == declared
    staff = client_for("staff")
    for model in registered:
        url = reverse(f"admin:jobs_{model._meta.model_name}_changelist")
        assert staff.get(url).status_code == 200, url


def test_connection_key_is_write_only_in_the_admin(sandbox_url: str, sandbox_key: str) -> None:
    staff = client_for("staff")
    response = staff.post(
        reverse("admin:jobs_providerconnection_add"),
        {
            "name": "Via admin",
            "kind": "sandbox",
            "base_url": sandbox_url,
            "api_key": sandbox_key,
            "enabled": "on",
        },
    )
    assert response.status_code == 302
    connection = ProviderConnection.objects.get(name="Via admin")
    assert (
        connection.get_api_key() == sandbox_key and sandbox_key not in connection.api_key_encrypted
    )
    for url in (
        reverse("admin:jobs_providerconnection_changelist"),
        reverse("admin:jobs_providerconnection_change", args=[connection.pk]),
    ):
        page = staff.get(url)
        assert page.status_code == 200 and sandbox_key.encode() not in page.content
        assert sandbox_key[-4:].encode() in page.content  # the hint is shown
    # Saving again with an empty key keeps the stored one.
    staff.post(
        reverse("admin:jobs_providerconnection_change", args=[connection.pk]),
        {
            "name": "Via admin",
            "kind": "sandbox",
            "base_url": sandbox_url,
            "api_key": "",
            "enabled": "on",
        },
    )
    connection.refresh_from_db()
    assert connection.get_api_key() == sandbox_key


@pytest.mark.worker
def test_admin_sync_action_asks_a_worker(sandbox_connection, make_dataset, celery_worker) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import wait_until
    from tests.jobs.test_launch_and_poll import launched

    job = launched(sandbox_connection, make_dataset())
    assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id is not None)
    response = client_for("staff").post(
        reverse("admin:jobs_job_changelist"),
        {"action": "sync_now", "_selected_action": [str(job.pk)]},
    )
    assert response.status_code == 302
    # The action asks; the worker syncs (a page never waits on the provider).
    from jobs.models import JobControl

    control = JobControl.objects.get(job=job, action="sync")
    assert control.requested_by is not None and control.requested_by.username == "staff-user"
    assert wait_until(lambda: JobControl.objects.get(pk=control.pk).state == "done")
    job.refresh_from_db()
    assert job.last_synced_at is not None and job.status == "succeeded"
    from core.models import AuditEntry

    assert AuditEntry.objects.filter(action="job_sync", object_id=str(job.pk)).exists()
