"""The admins' provider-connections page: the write-only key, editing, and "Test connection"
against the sandbox over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from core.models import AuditEntry
from jobs.connections import interactive_timeouts, provider_for_connection
from jobs.models import ProviderConnection
from jobs.services import connection_save
from tests.conftest import Sandbox
from tests.jobs.test_views import _catalog, make_job  # noqa: F401 - autouse fixture
from tests.permissions import client_for
from tests.sandbox.data import chat_examples

SECRET = "sk-live-UNIQUE-plaintext-key-7x7x7x"
WEBHOOK = "whsec_UNIQUEwebhooksecretvalue123"


def form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Team OpenAI",
        "kind": "openai",
        "base_url": "https://api.openai.com/v1",
        "api_key": SECRET,
        "webhook_secret": WEBHOOK,
        "organization": "org-123",
        "project": "proj_abc",
        "api_version": "",
        "enabled": "on",
    }
    data.update(overrides)
    return data


def assert_no_secret(response: Any) -> None:
    body = (
        response.content
        if not getattr(response, "streaming", False)
        else b"".join(response.streaming_content)
    )
    assert SECRET.encode() not in body and WEBHOOK.encode() not in body, response.request[
        "PATH_INFO"
    ]


@pytest.mark.django_db
def test_create_edit_and_the_key_is_never_shown(make_dataset: Any) -> None:
    staff = client_for("staff")
    created = staff.post("/jobs/connections/new/", form_data(), follow=True)
    assert created.status_code == 200
    assert_no_secret(created)
    connection = ProviderConnection.objects.get(name="Team OpenAI")
    assert connection.get_api_key() == SECRET and connection.get_webhook_secret() == WEBHOOK
    assert SECRET not in connection.api_key_encrypted
    assert (connection.organization, connection.project, connection.enabled) == (
        "org-123",
        "proj_abc",
        True,
    )

    listing = staff.get("/jobs/connections/")
    html = listing.content.decode()
    assert "Team OpenAI" in html and "OpenAI" in html and "https://api.openai.com/v1" in html
    assert "••••7x7x" in html
    assert_no_secret(listing)

    edit = staff.get(f"/jobs/connections/{connection.pk}/")
    assert_no_secret(edit)
    assert 'type="password" name="api_key"' in edit.content.decode()
    assert "Current key: ••••7x7x" in edit.content.decode()

    # An empty key keeps the stored one; the other fields change.
    kept = staff.post(
        f"/jobs/connections/{connection.pk}/",
        form_data(api_key="", webhook_secret="", name="Renamed", enabled=""),
    )
    assert kept.status_code == 302
    connection.refresh_from_db()
    assert connection.name == "Renamed" and not connection.enabled
    assert connection.get_api_key() == SECRET and connection.get_webhook_secret() == WEBHOOK
    # A new key replaces it.
    staff.post(
        f"/jobs/connections/{connection.pk}/",
        form_data(api_key="sk-rotated-key-0001", name="Renamed"),
    )
    connection.refresh_from_db()
    assert connection.get_api_key() == "sk-rotated-key-0001"
    actions = list(
        AuditEntry.objects.filter(object_type="providerconnection")
        .order_by("at")
        .values_list("action", flat=True)
    )
    assert actions == ["connection_created", "connection_updated", "connection_updated"]

    # Put the first key back and walk every page that could mention the connection.
    connection_save(
        connection=connection,
        name="Renamed",
        kind="openai",
        base_url=connection.base_url,
        api_key=SECRET,
        webhook_secret=WEBHOOK,
    )
    dataset = make_dataset(chat_examples(12))
    job = make_job(
        connection, dataset, status="succeeded", fine_tuned_model="ft:gpt-4o-mini-2024-07-18:o:s:1"
    )
    for url in (
        "/jobs/connections/",
        f"/jobs/connections/{connection.pk}/",
        "/jobs/connections/new/",
        "/jobs/new/",
        f"/jobs/new/?clone={job.pk}",
        f"/jobs/{job.pk}/",
        f"/jobs/{job.pk}/live.json",
        f"/jobs/{job.pk}/edit/",
        f"/jobs/{job.pk}/delete-model/",
        "/admin/jobs/providerconnection/",
        f"/admin/jobs/providerconnection/{connection.pk}/change/",
        "/admin/jobs/job/",
        f"/admin/jobs/job/{job.pk}/change/",
        "/admin/core/auditentry/",
    ):
        response = staff.get(url)
        assert response.status_code == 200, url
        assert_no_secret(response)
    # Posted back with errors, the form does not echo the key either.
    invalid = staff.post("/jobs/connections/new/", form_data(name="Renamed", base_url="not a url"))
    assert invalid.status_code == 200 and "Enter a valid URL." in invalid.content.decode()
    assert_no_secret(invalid)


@pytest.mark.django_db
def test_form_errors() -> None:
    staff = client_for("staff")
    missing_key = staff.post("/jobs/connections/new/", form_data(api_key=""))
    assert "Enter the API key for the new connection." in missing_key.content.decode()
    version = staff.post("/jobs/connections/new/", form_data(api_version="2025-04-01-preview"))
    assert "The API version applies to Azure OpenAI only." in version.content.decode()
    kind = staff.post("/jobs/connections/new/", form_data(kind="anthropic"))
    assert kind.status_code == 200 and "Select a valid choice" in kind.content.decode()
    assert not ProviderConnection.objects.exists()
    staff.post("/jobs/connections/new/", form_data())
    duplicate = staff.post("/jobs/connections/new/", form_data())
    assert "already exists" in duplicate.content.decode()
    azure = staff.post(
        "/jobs/connections/new/",
        form_data(name="Az", kind="azure_openai", api_version="2025-04-01-preview"),
    )
    assert azure.status_code == 302
    assert ProviderConnection.objects.get(name="Az").api_version == "2025-04-01-preview"


@pytest.mark.django_db
def test_members_cannot_reach_connections() -> None:
    member = client_for("member")
    assert member.get("/jobs/connections/").status_code == 403
    assert member.post("/jobs/connections/new/", form_data()).status_code == 403
    assert not ProviderConnection.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_test_connection_lists_models(
    sandbox_connection: ProviderConnection, sandbox_key: str
) -> None:
    staff = client_for("staff")
    response = staff.post(f"/jobs/connections/{sandbox_connection.pk}/test/", follow=True)
    count = len(provider_for_connection(sandbox_connection).list_models())
    assert count > 0
    assert f"“Sandbox” works: {count} models listed." in response.content.decode()
    assert sandbox_key not in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_test_connection_shows_the_providers_error(sandbox_url: str, settings: Any) -> None:
    settings.PROVIDER_MAX_RETRIES = 0
    wrong = "sk-wrong-key-that-must-not-leak-1234"
    connection = connection_save(
        name="Wrong key", kind="sandbox", base_url=sandbox_url, api_key=wrong
    )
    staff = client_for("staff")
    html = staff.post(f"/jobs/connections/{connection.pk}/test/", follow=True).content.decode()
    assert "“Wrong key” failed:" in html and "HTTP 401" in html and "invalid_api_key" in html
    assert wrong not in html


def test_interactive_calls_are_bounded_to_ten_seconds_by_default() -> None:
    """The calls a page waits on: connecting plus reading within 10 s, one attempt."""
    bounded = interactive_timeouts()
    assert bounded.max_retries == 0
    assert bounded.connect + bounded.read == 10 and 0 < bounded.connect <= 5


@pytest.mark.django_db(transaction=True)
def test_test_connection_gives_up_on_a_held_provider_within_its_budget(
    sandbox: Sandbox, sandbox_connection: ProviderConnection, settings: Any
) -> None:
    settings.PROVIDER_INTERACTIVE_TIMEOUT = 1  # a held provider answers after 2 s
    sandbox.control("faults", {"kinds": ["hang"], "hang_seconds": 2, "path": "/models$"})
    staff = client_for("staff")
    html = staff.post(f"/jobs/connections/{sandbox_connection.pk}/test/", follow=True)
    assert "“Sandbox” failed: Timed out waiting for" in html.content.decode()
    # One attempt, with the budget's timeouts on the httpx client the page used.
    assert sandbox.control("faults", method="GET")["data"][0]["injected"] == 1
    used = provider_for_connection(sandbox_connection, interactive=True).http_client.timeout
    assert used.connect is not None and used.read is not None
    assert used.connect + used.read <= 1
    assert (used.connect, used.read) == (0.25, 0.75)


@pytest.mark.django_db
def test_test_connection_with_unreadable_key(settings: Any) -> None:
    connection = connection_save(
        name="Rotated", kind="openai", base_url="https://api.openai.com/v1", api_key=SECRET
    )
    ProviderConnection.objects.filter(pk=connection.pk).update(
        api_key_encrypted="not-a-fernet-token"
    )
    html = (
        client_for("staff")
        .post(f"/jobs/connections/{connection.pk}/test/", follow=True)
        .content.decode()
    )
    assert "“Rotated” failed:" in html and "cannot be decrypted" in html


@pytest.mark.django_db
def test_connection_list_query_count(django_assert_max_num_queries: Any) -> None:
    for i in range(8):
        connection_save(
            name=f"C{i}", kind="sandbox", base_url="http://localhost/v1", api_key=f"sk-key-{i:04d}"
        )
    staff = client_for("staff")
    staff.get("/jobs/connections/")
    # Session, user, two permission lookups, and the one list query.
    with django_assert_max_num_queries(5):
        assert staff.get("/jobs/connections/").status_code == 200
