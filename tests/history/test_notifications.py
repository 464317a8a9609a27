"""Notifications: a job reaching a terminal state is announced once per recipient (email with
Django's backend, Slack-compatible webhooks over HTTP), however many syncs see the state and
whether polling or a webhook saw it first; failures are retried; user content is escaped."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from jobs.models import Job, Notification, NotificationSetting, ProviderConnection
from jobs.notifications import (
    MAX_ATTEMPTS,
    NotificationFailed,
    email_message,
    notification_send,
    notifications_for_terminal,
    slack_text,
)
from jobs.services import LaunchRequest, connection_save, job_launch, job_launch_run
from jobs.sync import job_sync
from tests.conftest import wait_until
from tests.history.helpers import WEBHOOK_SECRET, Receiver
from tests.history.test_webhooks import event, headers_for, post
from tests.permissions import LOGIN, assert_matrix, client_for, make_user
from tests.sandbox.data import chat_examples


def deliver_all() -> None:
    """Send what is pending here (a worker may be sending some too: each is sent once)."""
    for pk in Notification.objects.values_list("pk", flat=True):

        def sent(pk: int = pk) -> bool:
            try:
                notification_send(notification_id=pk)
            except NotificationFailed:
                return False
            return Notification.objects.get(pk=pk).state == "sent"

        assert wait_until(sent, timeout=30, interval=0.3), Notification.objects.get(pk=pk)


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_each_terminal_state_is_announced_once(
    sandbox_connection, make_dataset, celery_worker
) -> None:  # type: ignore[no-untyped-def]
    personal, team = Receiver(), Receiver()
    try:
        member = make_user("member", username="ada")
        client = Client()
        client.force_login(member)
        response = client.post(
            "/jobs/notifications/",
            {"email": "ada@example.com", "email_enabled": "on", "slack_webhook_url": personal.url},
        )
        assert response.status_code == 302
        connection_save(
            connection=sandbox_connection, name="Sandbox", kind="sandbox",
            base_url=sandbox_connection.base_url, api_key=None,
            notify_emails="ops@example.com\nlead@example.com, OPS@example.com",
            slack_webhook_url=team.url,
        )  # fmt: skip
        dataset = make_dataset(chat_examples(12))

        def launch(name: str) -> Job:
            request = LaunchRequest(
                connection=sandbox_connection, base_model="gpt-4o-mini",
                training_dataset=dataset, name=name,
            )  # fmt: skip
            job = job_launch(request=request, user=member)
            job_launch_run(job_id=job.pk)  # or the worker's launch task does it: idempotent
            assert wait_until(lambda: Job.objects.get(pk=job.pk).provider_job_id, timeout=30)
            return Job.objects.get(pk=job.pk)

        def webhook(job: Job, webhook_id: str) -> None:
            body = event(job.provider_job_id, webhook_id=webhook_id)
            headers = headers_for(body, webhook_id=webhook_id, secret=WEBHOOK_SECRET)
            synced = Job.objects.get(pk=job.pk).last_synced_at
            assert post(sandbox_connection.pk, body, headers).json()["status"] == "sync_queued"
            # The worker runs the sync the webhook queued.
            assert wait_until(
                lambda: Job.objects.get(pk=job.pk).last_synced_at != synced, timeout=30
            )

        # Polling sees it first, then a webhook and more polls.
        polled = launch("polled first")
        for _ in range(3):
            job_sync(job_id=polled.pk)
        assert Job.objects.get(pk=polled.pk).status == "succeeded"
        webhook(polled, "wh_polled")
        job_sync(job_id=polled.pk)

        # A webhook sees it first, then polls.
        hooked = launch("webhook first")
        webhook(hooked, "wh_hooked")
        assert Job.objects.get(pk=hooked.pk).status == "succeeded"
        for _ in range(2):
            job_sync(job_id=hooked.pk)
        webhook(hooked, "wh_hooked_again")

        deliver_all()
        for job in (polled, hooked):
            rows = set(
                Notification.objects.filter(job=job).values_list("channel", "target", "job_status")
            )
            assert rows == {
                ("email", "ada@example.com", "succeeded"),
                ("email", "ops@example.com", "succeeded"),
                ("email", "lead@example.com", "succeeded"),
                ("slack", personal.url, "succeeded"),
                ("slack", team.url, "succeeded"),
            }
            assert Job.objects.get(pk=job.pk).notified_status == "succeeded"
        # Each row is sent at most once (claimed while pending, marked sent after the send
        # returned): with every row sent, nothing is in flight and nothing will be sent again.
        assert set(Notification.objects.values_list("state", flat=True)) == {"sent"}
        assert sorted(m.to[0] for m in mail.outbox) == sorted(
            ["ada@example.com", "ops@example.com", "lead@example.com"] * 2
        )
        assert len(personal.received) == len(team.received) == 2
        for job in (polled, hooked):
            url = f"/jobs/{job.pk}/"
            assert sum(url in m.body for m in mail.outbox) == 3
            assert sum(url in text for text in team.texts()) == 1
        email = next(m for m in mail.outbox if "polled first" in m.subject)
        assert email.subject == "[Tuneboard] polled first succeeded"
        assert "Fine-tuned model: ft:gpt-4o-mini" in email.body
        assert "Final training loss:" in email.body
    finally:
        personal.close()
        team.close()


@pytest.fixture
def offline() -> ProviderConnection:
    return connection_save(
        name="Offline", kind="openai", base_url="http://127.0.0.1:9/v1", api_key="sk-x-000000"
    )


def finished_job(connection: ProviderConnection, **fields: Any) -> Job:
    defaults: dict[str, Any] = {
        "connection": connection, "provider_job_id": "ftjob-done", "base_model": "gpt-4o-mini",
        "status": "succeeded", "fine_tuned_model": "ft:gpt-4o-mini:org:x:1",
        "final_train_loss": 0.1234, "trained_tokens": 12345, "finished_at": timezone.now(),
    }  # fmt: skip
    defaults.update(fields)
    return Job.objects.create(**defaults)


@pytest.mark.django_db
def test_retries_then_gives_up(offline: ProviderConnection, settings: Any) -> None:
    receiver = Receiver()
    try:
        offline.slack_webhook_url = receiver.url
        offline.notify_emails = "ops@example.com"
        offline.save()
        job = finished_job(offline)
        created = notifications_for_terminal(job=job)
        assert len(created) == 2 and notifications_for_terminal(job=job) == []
        slack = Notification.objects.get(channel="slack")
        receiver.status = 503
        with pytest.raises(NotificationFailed):
            notification_send(notification_id=slack.pk)
        slack.refresh_from_db()
        assert (slack.state, slack.attempts, slack.claim) == ("pending", 1, None)
        assert "503" in slack.last_error
        receiver.status = 200
        assert notification_send(notification_id=slack.pk) is True
        assert notification_send(notification_id=slack.pk) is False  # sent already
        assert len(receiver.received) == 2 and Notification.objects.get(pk=slack.pk).state == "sent"

        # A receiver that refuses the message for good is not asked again.
        refused = Notification.objects.create(
            job=job, job_status="failed", channel="slack", target=receiver.url
        )
        receiver.status = 404
        assert notification_send(notification_id=refused.pk) is False
        assert Notification.objects.get(pk=refused.pk).state == "failed"

        # Email through an SMTP server that is down: retried, then given up.
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
        email = Notification.objects.get(channel="email")
        for attempt in range(1, MAX_ATTEMPTS):
            with pytest.raises(NotificationFailed):
                notification_send(notification_id=email.pk)
            assert Notification.objects.get(pk=email.pk).attempts == attempt
        assert notification_send(notification_id=email.pk) is False
        email.refresh_from_db()
        assert email.state == "failed" and email.attempts == MAX_ATTEMPTS
    finally:
        receiver.close()


@pytest.mark.django_db
def test_who_is_told(offline: ProviderConnection) -> None:
    quiet = make_user("member", username="quiet")
    quiet.email = "quiet@example.com"
    quiet.save()
    job = finished_job(offline, created_by=quiet)
    assert notifications_for_terminal(job=job) == []  # nobody opted in
    assert Job.objects.get(pk=job.pk).notified_status == "succeeded"
    other = finished_job(offline, provider_job_id="ftjob-2", status="cancelled", created_by=quiet)
    NotificationSetting.objects.create(user=quiet, email_enabled=True)
    assert len(notifications_for_terminal(job=other)) == 1
    running = finished_job(offline, provider_job_id="ftjob-3", status="running")
    assert notifications_for_terminal(job=running) == []
    assert Job.objects.get(pk=running.pk).notified_status == ""


@pytest.mark.django_db
def test_messages_escape_user_content(offline: ProviderConnection, settings: Any) -> None:
    settings.TUNEBOARD_BASE_URL = "https://tuneboard.example.com/"
    job = finished_job(
        offline, name="<!channel> <https://evil.example|click> & co\nBcc: victim@example.com",
        status="failed", error={"code": "x", "message": "bad <file>"},
    )  # fmt: skip
    slack = Notification(job=job, job_status="failed", channel="slack", target="https://x")
    text = slack_text(slack)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert "&lt;https://evil.example|click&gt; &amp; co" in text
    assert f"<https://tuneboard.example.com/jobs/{job.pk}/|" in text
    assert "Error: bad &lt;file&gt;" in text
    message = email_message(
        Notification(job=job, job_status="failed", channel="email", target="a@example.com")
    )
    assert "\n" not in message.subject and message.subject.startswith("[Tuneboard] <!channel>")
    assert message.to == ["a@example.com"] and message.extra_headers == {}
    assert f"https://tuneboard.example.com/jobs/{job.pk}/" in message.body
    assert message.message()["Bcc"] is None


@pytest.mark.django_db
def test_settings_page() -> None:
    url = "/jobs/notifications/"
    readers = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
    assert_matrix(url, readers)
    assert_matrix(url, {**readers, "viewer": 302, "member": 302, "staff": 302}, method="post")
    viewer = client_for("viewer")
    for bad in ("javascript:alert(1)", "ftp://example.com/x"):
        response = viewer.post(url, {"slack_webhook_url": bad})
        assert response.status_code == 200 and "error" in response.content.decode()
    response = viewer.post(url, {"email_enabled": "on", "email": ""})
    assert "Enter the address" in response.content.decode()
    response = viewer.post(
        url, {"email_enabled": "on", "email": "v@example.com", "slack_webhook_url": ""}
    )
    assert response.status_code == 302
    setting = NotificationSetting.objects.get(user__username="viewer-user")
    assert setting.email_enabled and setting.user.email == "v@example.com"
    page = viewer.get(url).content.decode()
    assert 'value="v@example.com"' in page and "checked" in page


@pytest.mark.django_db
def test_connection_form_takes_notification_addresses() -> None:
    staff = client_for("staff")
    data = {
        "name": "Notified", "kind": "openai", "base_url": "https://api.openai.com/v1",
        "api_key": "sk-new-key-0000", "enabled": "on",
        "notify_emails": "a@example.com; b@example.com", "slack_webhook_url": "https://hooks.example/x",
    }  # fmt: skip
    assert staff.post("/jobs/connections/new/", data).status_code == 302
    connection = ProviderConnection.objects.get(name="Notified")
    assert connection.notify_email_list == ["a@example.com", "b@example.com"]
    assert connection.slack_webhook_url == "https://hooks.example/x"
    bad = staff.post("/jobs/connections/new/", {**data, "name": "X", "notify_emails": "nope"})
    assert bad.status_code == 200 and "is not an email address" in bad.content.decode()


@pytest.mark.django_db
def test_internal_webhook_targets_refused_when_saved_and_when_sent(
    offline: ProviderConnection, settings: Any
) -> None:
    # The tests' settings allow loopback receivers; production allows nothing internal.
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    receiver = Receiver()
    try:
        member = client_for("member")
        for target in (
            receiver.url,
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.8/",
        ):
            response = member.post(
                "/jobs/notifications/", {"email": "", "slack_webhook_url": target}
            )
            assert response.status_code == 200
            assert "webhooks may not reach" in response.content.decode()
        assert not NotificationSetting.objects.filter(user__username="member-user").exists()
        staff = client_for("staff")
        data = {
            "name": "Internal", "kind": "openai", "base_url": "https://api.openai.com/v1",
            "api_key": "sk-new-key-0000", "enabled": "on", "slack_webhook_url": receiver.url,
        }  # fmt: skip
        response = staff.post("/jobs/connections/new/", data)
        assert response.status_code == 200 and "webhooks may not reach" in response.content.decode()
        assert not ProviderConnection.objects.filter(name="Internal").exists()

        # Stored before the rule (or its host re-pointed since): refused at delivery, for good.
        offline.slack_webhook_url = receiver.url
        offline.save()
        created = notifications_for_terminal(job=finished_job(offline))
        assert notification_send(notification_id=created[0]) is False
        notification = Notification.objects.get(pk=created[0])
        assert notification.state == "failed" and notification.attempts == 1
        assert "UnsafeURL" in notification.last_error and "127.0.0.1" in notification.last_error
        assert receiver.received == []
    finally:
        receiver.close()
