"""What the Django admin lets a person change: annotations only, never what a provider or a
worker owns; no hand-made jobs; an audit log nobody can rewrite (issue 14, item 12)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.sites import site
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse

from core.models import AuditEntry
from core.services import audit_record
from jobs.models import Job, JobControl, ProviderConnection
from tests.permissions import client_for

pytestmark = pytest.mark.django_db

# Every field a change page of our apps offers as an input. Growing this list is a decision:
# a field a provider, a worker or a lease writes must never be here.
EDITABLE = {
    "core.ApiToken": [],
    "core.AuditEntry": [],
    "core.Heartbeat": [],
    "core.TaskProbe": [],
    "dashboard.RunDiagnosis": [],
    "dashboard.ShareLink": ["label"],
    "datasets.BaseModel": [
        "provider_kind", "encoding", "training_context", "inference_context",
        "training_price_per_1m", "input_price_per_1m", "output_price_per_1m", "supports_vision",
        "supports_dpo", "legacy_completion", "deprecated_on", "shutdown_on",
    ],
    "datasets.Dataset": ["name", "description", "tags"],
    "evals.Evaluation": ["name"],
    "jobs.Job": ["name", "notes", "tags", "archived"],
    "jobs.ImportRun": [],
    "jobs.NotificationSetting": ["user", "email_enabled", "slack_webhook_url"],
    "jobs.ProviderConnection": [
        "name", "kind", "base_url", "organization", "project", "api_version", "enabled",
        "notify_emails", "slack_webhook_url", "guardrail_defaults", "api_key", "webhook_secret",
    ],
    # A job's rules, as the run page edits them (jobs.guardrails); firings are history.
    "jobs.Guardrail": ["job", "kind", "params", "action", "enabled"],
    "jobs.GuardrailFiring": [],
    # Made from their plan on their page; the admin follows, cancels and advances them.
    "jobs.Sweep": [],
}  # fmt: skip
OUR_APPS = {"core", "dashboard", "datasets", "evals", "jobs", "sandbox"}
LEASED = ("jobs.Job", "jobs.ImportRun", "datasets.Dataset", "evals.Evaluation")


def _superuser() -> Any:
    User = get_user_model()
    return User.objects.filter(username="root").first() or User.objects.create_superuser(
        "root", "root@example.com", "pw-unused"
    )


def _as_superuser() -> Client:
    client = Client()
    client.force_login(_superuser())
    return client


def _job() -> Job:
    connection = ProviderConnection.objects.create(
        name="Admin test", kind="sandbox", base_url="https://provider.invalid/v1"
    )
    return Job.objects.create(
        connection=connection,
        base_model="gpt-4o-mini-2024-07-18",
        provider_job_id="ftjob-admin",
        status="running",
        fine_tuned_model="",
        trained_tokens=1200,
        lease_owner="42@host/7",
    )


def test_editable_fields_of_every_admin_are_the_annotations_only() -> None:
    request = RequestFactory().get("/")
    request.user = _superuser()
    seen = {}
    for model, model_admin in site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        obj = model()
        if not model_admin.has_change_permission(request, obj):
            seen[model._meta.label] = "view only"
            continue
        readonly = set(model_admin.get_readonly_fields(request, obj))
        fields = [f for f in model_admin.get_fields(request, obj) if f not in readonly]
        seen[model._meta.label] = fields
    expected = {
        label: fields for label, fields in EDITABLE.items() if seen.get(label) != "view only"
    }
    assert {k: v for k, v in seen.items() if v != "view only"} == expected


def test_leased_work_shows_its_lease_read_only() -> None:
    request = RequestFactory().get("/")
    request.user = _superuser()
    for label in LEASED:
        model = apps.get_model(label)
        model_admin = site._registry[model]
        readonly = set(model_admin.get_readonly_fields(request, model()))
        assert {"lease_owner", "lease_expires_at", "lease_heartbeat_at"} <= readonly, label
        assert "lease_owner" in model_admin.get_fields(request, model()), label


@pytest.mark.parametrize("who", ["staff", "superuser"])
def test_jobs_cannot_be_added_in_the_admin(who: str) -> None:
    client = _as_superuser() if who == "superuser" else client_for("staff")
    assert client.get(reverse("admin:jobs_job_add")).status_code == 403
    response = client.post(
        reverse("admin:jobs_job_add"), {"name": "hand-made", "base_model": "gpt-4o-mini"}
    )
    assert response.status_code == 403 and not Job.objects.filter(name="hand-made").exists()
    changelist = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert reverse("admin:jobs_job_add") not in changelist


def test_job_change_page_edits_annotations_and_ignores_provider_fields() -> None:
    job = _job()
    client = client_for("staff")
    url = reverse("admin:jobs_job_change", args=[job.pk])
    page = client.get(url).content.decode()
    inputs = set(re.findall(r'<(?:input|textarea|select)[^>]*name="([a-z_]+)"', page))
    assert inputs - {"csrfmiddlewaretoken", "_save", "_continue"} == {
        "name", "notes", "tags", "archived"
    }  # fmt: skip
    assert "42@host/7" in page and "Lease owner" in page  # shown, read-only
    response = client.post(
        url,
        {
            "name": "Renamed",
            "notes": "why",
            "tags": "a, b",
            "archived": "on",
            # A forged form: none of these may reach the row.
            "status": "succeeded",
            "fine_tuned_model": "ft:forged",
            "trained_tokens": "1",
            "lease_owner": "",
        },
    )
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.name, job.notes, job.tags, job.archived) == ("Renamed", "why", ["a", "b"], True)
    assert (job.status, job.fine_tuned_model, job.trained_tokens, job.lease_owner) == (
        "running", "", 1200, "42@host/7"
    )  # fmt: skip
    actions = set(AuditEntry.objects.filter(object_id=str(job.pk)).values_list("action", flat=True))
    assert actions == {"job_annotated", "job_archived"}


def test_audit_entries_cannot_be_changed_or_deleted_even_by_a_superuser() -> None:
    entry = audit_record(actor=None, action="job_cancel", obj=_job())
    for client in (_as_superuser(), client_for("staff")):
        change = reverse("admin:core_auditentry_change", args=[entry.pk])
        delete = reverse("admin:core_auditentry_delete", args=[entry.pk])
        page = client.get(change)
        assert page.status_code == 200 and b'name="action"' not in page.content  # view only
        assert client.post(change, {"action": "nothing"}).status_code == 403
        assert client.get(delete).status_code == 403
        assert client.post(delete, {"post": "yes"}).status_code == 403
        changelist = reverse("admin:core_auditentry_changelist")
        assert b"delete_selected" not in client.get(changelist).content
        client.post(
            changelist, {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
        )
    entry.refresh_from_db()
    assert entry.action == "job_cancel"


def test_plural_names_are_english() -> None:
    for model in apps.get_models():
        plural = str(model._meta.verbose_name_plural)
        assert not re.search(r"[^aeiou]ys$", plural), f"{model._meta.label}: {plural}"
    sandbox = apps.get_model("sandbox", "SandboxWebhookDelivery")
    assert sandbox._meta.verbose_name_plural == "sandbox webhook deliveries"


def test_cancelling_from_the_admin_asks_first() -> None:
    from jobs.services import connection_save
    from tests.jobs.test_views import DEAD_URL, SECRET

    job = _job()
    # A connection with a key, so the control can be asked for (a worker would do it).
    keyed = connection_save(name="Keyed", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)
    Job.objects.filter(pk=job.pk).update(connection=keyed)
    client = client_for("staff")
    changelist = reverse("admin:jobs_job_changelist")
    asked = client.post(changelist, {"action": "cancel", "_selected_action": [str(job.pk)]})
    text = asked.content.decode()
    assert asked.status_code == 200 and "cannot be resumed" in text and "is billed" in text
    assert not JobControl.objects.filter(job=job).exists()
    done = client.post(
        changelist, {"action": "cancel", "_selected_action": [str(job.pk)], "post": "yes"}
    )
    assert done.status_code == 302
    assert JobControl.objects.get(job=job).action == "cancel"
