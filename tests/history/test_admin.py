"""The admin for the history models: lists, filters, read-only ids, and the actions that call
the services (import again, archive, send a notification again)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from core.models import AuditEntry
from jobs.models import (
    ImportedFile,
    ImportRun,
    Job,
    Notification,
    NotificationSetting,
    ProviderConnection,
    WebhookDelivery,
)
from jobs.services import connection_save
from tests.permissions import client_for, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def connection() -> ProviderConnection:
    return connection_save(
        name="Offline", kind="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x-00000000"
    )


def test_history_models_list_and_open(connection: ProviderConnection) -> None:
    job = Job.objects.create(connection=connection, base_model="m", provider_job_id="ftjob-1")
    objects = [
        ImportRun.objects.create(connection=connection, status="failed", last_error="x"),
        ImportedFile.objects.create(connection=connection, provider_file_id="file-1", status="missing"),
        WebhookDelivery.objects.create(connection=connection, webhook_id="wh", type="t", outcome="ignored"),
        NotificationSetting.objects.create(user=make_user("viewer"), email_enabled=True),
        Notification.objects.create(job=job, job_status="failed", channel="email", target="a@b.c"),
    ]  # fmt: skip
    staff = client_for("staff")
    for obj in objects:
        meta = obj._meta
        changelist = reverse(f"admin:jobs_{meta.model_name}_changelist")
        assert staff.get(changelist).status_code == 200, changelist
        assert staff.get(changelist + "?q=x").status_code == 200, changelist
        change = reverse(f"admin:jobs_{meta.model_name}_change", args=[obj.pk])
        assert staff.get(change).status_code == 200, change
    assert client_for("member").get(reverse("admin:jobs_importrun_changelist")).status_code == 302


def test_actions_call_the_services(connection: ProviderConnection) -> None:
    staff = client_for("staff")
    old = ImportRun.objects.create(connection=connection, status="failed")
    response = staff.post(
        reverse("admin:jobs_importrun_changelist"),
        {"action": "run_again", "_selected_action": [old.pk]},
    )
    assert response.status_code == 302
    run = ImportRun.objects.exclude(pk=old.pk).get()
    assert run.status == "queued" and run.started_by.username == "staff-user"
    staff.post(
        reverse("admin:jobs_providerconnection_changelist"),
        {"action": "import_history", "_selected_action": [connection.pk]},
    )
    assert ImportRun.objects.count() == 2  # the queued one is resumed, not doubled
    assert AuditEntry.objects.filter(action="import_resumed").count() == 1

    job = Job.objects.create(connection=connection, base_model="m", status="failed")
    failed = Notification.objects.create(
        job=job, job_status="failed", channel="email", target="a@b.c", state="failed", attempts=6
    )
    staff.post(
        reverse("admin:jobs_notification_changelist"),
        {"action": "resend", "_selected_action": [failed.pk]},
    )
    failed.refresh_from_db()
    assert (failed.state, failed.attempts) == ("pending", 0)
    assert AuditEntry.objects.filter(action="notification_resent").exists()

    staff.post(
        reverse("admin:jobs_providerconnection_changelist"),
        {"action": "archive", "_selected_action": [connection.pk], "post": "yes"},
    )
    staff.post(
        reverse("admin:jobs_providerconnection_changelist"),
        {"action": "import_history", "_selected_action": [connection.pk]},
    )
    assert ProviderConnection.objects.get().archived_at is not None
    # Archived: the import refuses (the active run stays as it was, nothing new).
    assert ImportRun.objects.count() == 2


def test_connection_admin_keeps_notification_fields(connection: ProviderConnection) -> None:
    staff = client_for("staff")
    response = staff.post(
        reverse("admin:jobs_providerconnection_change", args=[connection.pk]),
        {
            "name": "Offline", "kind": "openai", "base_url": "http://127.0.0.1:9/v1",
            "api_key": "", "enabled": "on", "notify_emails": "x@example.com, y@example.com",
            "slack_webhook_url": "https://hooks.example/a",
        },
    )  # fmt: skip
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.notify_email_list == ["x@example.com", "y@example.com"]
    assert connection.slack_webhook_url == "https://hooks.example/a"
    assert connection.get_api_key() == "sk-x-00000000"
