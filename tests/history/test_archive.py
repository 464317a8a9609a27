"""Archive mode: after an import the connection is archived and the provider key revoked; every
page of the imported runs still answers with its numbers, nothing polls the provider again,
and the controls that need the provider are replaced by an explanation."""

from __future__ import annotations

import html

import httpx
import pytest
from django.utils import timezone

from core.models import AuditEntry
from core.templatetags.core_format import count as thousands
from core.templatetags.core_format import metric
from dashboard.services import share_link_create
from datasets.models import Dataset
from jobs.history import import_now
from jobs.models import Checkpoint, Job, JobEvent, ProviderConnection
from jobs.sync import job_sync, jobs_claim_due
from tests.history.helpers import History, settle_datasets
from tests.permissions import LOGIN, assert_matrix, client_for, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_archived_history_stays_readable_after_the_key_is_revoked(
    settings, sandbox_url, sandbox_key, sandbox_connection, history: History
) -> None:  # type: ignore[no-untyped-def]
    import_now(connection=sandbox_connection, user=None)
    settle_datasets()
    # A running poll schedule and a share link, as a team would have them.
    Job.objects.update(next_poll_at=timezone.now())
    member = make_user("member", username="sharer")
    first = Job.objects.get(provider_job_id=history.succeeded[0])
    _, token = share_link_create(user=member, job_ids=[first.pk], label="for the client")

    staff = client_for("staff")
    # Without the box ticked the confirmation page comes back and nothing is archived.
    refused = staff.post(f"/jobs/connections/{sandbox_connection.pk}/archive/")
    assert refused.status_code == 200 and ProviderConnection.objects.get().archived_at is None
    assert "Tick the box to archive the connection." in refused.content.decode()
    response = staff.post(
        f"/jobs/connections/{sandbox_connection.pk}/archive/", {"confirm": "on"}, follow=True
    )
    assert "Archived “Sandbox”" in response.content.decode()
    connection = ProviderConnection.objects.get()
    assert connection.archived_at is not None
    assert connection.api_key_encrypted == "" and connection.masked_key == "not set"
    assert not Job.objects.filter(next_poll_at__isnull=False).exists()
    assert AuditEntry.objects.filter(action="connection_archived", actor__is_staff=True).exists()
    # The provider no longer accepts the key either.
    settings.SANDBOX_API_KEYS = [k for k in settings.SANDBOX_API_KEYS if k != sandbox_key]
    assert (
        httpx.get(
            f"{sandbox_url}/models", headers={"Authorization": f"Bearer {sandbox_key}"}
        ).status_code
        == 401
    )

    viewer = client_for("viewer")
    reader = client_for("member")
    runs = reader.get("/")
    assert runs.status_code == 200
    for job in Job.objects.select_related("training_dataset", "validation_dataset"):
        assert job.provider_job_id in runs.content.decode()
        page = reader.get(f"/jobs/{job.pk}/")
        assert page.status_code == 200, job.provider_job_id
        text = page.content.decode()
        assert html.escape(job.get_status_display()) in text
        assert "Archived connection" in text and "is archived (since" in text
        for control in ("/cancel/", "/pause/", "/resume/", "/sync/", "/delete-model/"):
            assert f'action="/jobs/{job.pk}{control}"' not in text
            assert f'href="/jobs/{job.pk}{control}"' not in text
        if job.total_steps:
            assert f"of {thousands(job.total_steps)}" in text
        if job.trained_tokens:
            assert thousands(job.trained_tokens) in text
        if job.final_train_loss is not None:
            assert metric(job.final_train_loss) in text
        if job.best_full_valid_loss is not None:
            assert metric(job.best_full_valid_loss) in text
        for checkpoint in Checkpoint.objects.filter(job=job):
            assert checkpoint.model_name in text
        newest = JobEvent.objects.filter(job=job).order_by("-created_at", "-id").first()
        assert html.escape(newest.message) in text
        assert viewer.get(f"/jobs/{job.pk}/").status_code == 200

        live = reader.get(f"/jobs/{job.pk}/live.json")
        assert live.status_code == 200
        data = live.json()
        assert data["status"] == job.status and data["trained_tokens"] == job.trained_tokens
        assert data["progress"]["total_steps"] == job.total_steps
        assert len(data["events"]) == min(200, JobEvent.objects.filter(job=job).count())
        for url in (f"/runs/{job.pk}/metrics.json", f"/runs/{job.pk}/figures.json"):
            assert reader.get(url).status_code == 200, url

        # Nothing asks the provider any more.
        outcome = job_sync(job_id=job.pk)
        assert not outcome.ran and outcome.error == "connection unusable"
    assert jobs_claim_due() == []

    for dataset in Dataset.objects.all():
        for url in (
            f"/datasets/{dataset.pk}/",
            f"/datasets/{dataset.pk}/examples/",
            f"/datasets/{dataset.pk}/download/",
        ):
            assert reader.get(url).status_code == 200, url
        assert str(dataset.n_examples) in reader.get(f"/datasets/{dataset.pk}/").content.decode()
    assert reader.get("/datasets/").status_code == 200

    shared = client_for("anonymous").get(f"/share/{token}/")
    assert shared.status_code == 200 and html.escape("for the client") in shared.content.decode()

    detail = reader.get(f"/jobs/connections/{connection.pk}/history/").content.decode()
    assert "Archived on" in detail and "Import history</button>" not in detail
    assert reader.post(f"/jobs/connections/{connection.pk}/import/").status_code == 302
    listing = staff.get("/jobs/connections/").content.decode()
    assert "Read-only: the key was removed" in listing
    assert f'action="/jobs/connections/{connection.pk}/test/"' not in listing
    # Exports keep working too.
    export = reader.get(f"/jobs/connections/{connection.pk}/export/")
    assert export.status_code == 200 and b"".join(export.streaming_content)[:2] == b"PK"


def test_archive_permissions(sandbox_connection) -> None:  # type: ignore[no-untyped-def]
    url = f"/jobs/connections/{sandbox_connection.pk}/archive/"
    denied = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 403}
    assert_matrix(url, denied, method="post", data={"confirm": "on"})
    assert ProviderConnection.objects.get().archived_at is None
    assert_matrix(url, {"staff": 200}, method="get")  # the confirmation page
    assert_matrix(url, {"staff": 405}, method="put")
    assert_matrix(url, {"staff": 302}, method="post", data={"confirm": "on"})
    assert ProviderConnection.objects.get().archived_at is not None
    assert_matrix("/jobs/connections/999999/archive/", {"staff": 404}, method="post")


def test_archive_from_the_admin(sandbox_connection) -> None:  # type: ignore[no-untyped-def]
    staff = client_for("staff")
    # The action asks first (what stops, what stays), like Django's own delete.
    asked = staff.post(
        "/admin/jobs/providerconnection/",
        {"action": "archive", "_selected_action": [sandbox_connection.pk]},
    )
    assert asked.status_code == 200 and "being billed, at the provider" in asked.content.decode()
    assert ProviderConnection.objects.get().archived_at is None
    response = staff.post(
        "/admin/jobs/providerconnection/",
        {"action": "archive", "_selected_action": [sandbox_connection.pk], "post": "yes"},
    )
    assert response.status_code == 302
    connection = ProviderConnection.objects.get()
    assert connection.archived_at and connection.api_key_encrypted == ""
