"""The history pages: the permission matrix of every view, methods, unknown ids, escaping of
user content, and the audit log (staff only) with its filters and pagination."""

from __future__ import annotations

import json

import pytest

from core.models import AuditEntry
from core.services import audit_record
from dashboard.services import share_link_create, share_link_revoke
from jobs.history import import_now, import_request
from jobs.models import ImportRun, Job, JobControl, ProviderConnection, WebhookDelivery
from jobs.services import connection_save, job_control_run
from tests.history.helpers import WEBHOOK_SECRET, History
from tests.history.test_webhooks import headers_for, post
from tests.permissions import LOGIN, assert_matrix, client_for, make_user

XSS = "<img src=x onerror=alert(1)>"
READ = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
STAFF = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 403, "staff": 200}
DEAD_URL = "http://127.0.0.1:9/v1"


@pytest.fixture
def offline() -> ProviderConnection:
    return connection_save(
        name=f"Offline {XSS}", kind="openai", base_url=DEAD_URL, api_key="sk-x-00000000",
        webhook_secret=WEBHOOK_SECRET,
    )  # fmt: skip


@pytest.mark.django_db
def test_permission_matrix(offline: ProviderConnection) -> None:
    pk = offline.pk
    assert_matrix(f"/jobs/connections/{pk}/history/", READ)
    members = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 302, "staff": 302}
    assert_matrix(f"/jobs/connections/{pk}/import/", members, method="post")
    run = ImportRun.objects.get()  # member started it, staff resumed the same one
    assert run.started_by.username == "member-user"
    assert list(
        AuditEntry.objects.filter(action__startswith="import").values_list("action", flat=True)
    ) == ["import_resumed", "import_requested"]
    assert_matrix(f"/jobs/imports/{run.pk}/status.json", READ)
    assert_matrix("/jobs/audit/", STAFF)
    assert_matrix("/jobs/audit/?action=nope&page=x", STAFF)
    # Methods and unknown ids.
    assert_matrix(f"/jobs/connections/{pk}/import/", {"member": 405}, method="get")
    for url in (f"/jobs/connections/{pk}/history/", f"/jobs/imports/{run.pk}/status.json"):
        assert_matrix(url, {"viewer": 405}, method="post")
    assert_matrix("/jobs/audit/", {"staff": 405}, method="post")
    assert_matrix("/jobs/connections/999999/history/", {"viewer": 404})
    assert_matrix("/jobs/connections/999999/import/", {"member": 404}, method="post")
    missing = client_for("viewer").get("/jobs/imports/999999/status.json")
    assert missing.status_code == 404 and missing.json() == {"error": "No such import."}


@pytest.mark.django_db
def test_connection_page_escapes_and_explains(offline: ProviderConnection) -> None:
    run = ImportRun.objects.create(
        connection=offline, status="failed", last_error=f"provider said {XSS}", jobs_total=3
    )
    body = json.dumps({"id": "e", "type": f"fine_tuning.job.{XSS}", "data": {"id": XSS}}).encode()
    assert post(offline.pk, body, headers_for(body, webhook_id=XSS)).status_code == 200
    assert WebhookDelivery.objects.get().outcome == "ignored"
    for role in ("viewer", "member", "staff"):
        page = client_for(role).get(f"/jobs/connections/{offline.pk}/history/").content.decode()
        assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
        assert f"http://testserver/webhooks/{offline.pk}/" in page
        assert (DEAD_URL in page) == (role == "staff")  # the base URL is for admins
        assert ("Import history</button>" in page) == (role != "viewer")
        assert ("Archive this connection" in page) == (role == "staff")
        assert f'<th scope="row">{run.pk}</th>' in page
    # Without a webhook secret the page says how to get one.
    connection_save(name="Quiet", kind="openai", base_url=DEAD_URL, api_key="sk-x-00000001")
    quiet = ProviderConnection.objects.get(name="Quiet")
    page = client_for("staff").get(f"/jobs/connections/{quiet.pk}/history/").content.decode()
    assert "No webhook secret is set" in page and "add the provider's signing secret" in page


@pytest.mark.django_db
def test_progress_json(offline: ProviderConnection) -> None:
    run = import_request(connection=offline, user=None, enqueue=False)
    ImportRun.objects.filter(pk=run.pk).update(
        status="running", jobs_total=8, jobs_done=2, files_downloaded=3, files_missing=1
    )
    data = client_for("viewer").get(f"/jobs/imports/{run.pk}/status.json").json()
    assert (data["jobs_done"], data["jobs_total"], data["percent"], data["active"]) == (
        2, 8, 25.0, True,
    )  # fmt: skip
    assert (data["files_downloaded"], data["files_missing"]) == (3, 1)
    page = client_for("member").get(f"/jobs/connections/{offline.pk}/history/").content.decode()
    assert f'data-status-url="/jobs/imports/{run.pk}/status.json"' in page
    assert 'max="8" value="2"' in page and "Resume the import" in page
    assert 'src="/static/js/connection_detail.js"' in page


# --- the audit log -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_audit_log_filters_and_pages(offline: ProviderConnection) -> None:
    ada = make_user("member", username="ada")
    job = Job.objects.create(connection=offline, base_model="m", name=XSS)
    for i in range(60):
        audit_record(actor=ada if i % 2 else None, action=f"demo_{i % 3}", obj=job)
    audit_record(actor=ada, action="connection_archived", obj=offline)
    staff = client_for("staff")
    page = staff.get("/jobs/audit/").content.decode()
    total = AuditEntry.objects.count()  # 61 and the connection's creation
    assert f"{total} entries" in page and "Page 1 of 2" in page and XSS not in page
    assert f'href="/jobs/{job.pk}/"' in page
    assert f'href="/jobs/connections/{offline.pk}/history/"' in page
    second = staff.get("/jobs/audit/?page=2").content.decode()
    assert "Page 2 of 2" in second and "← Newer" in second

    filtered = staff.get("/jobs/audit/?action=demo_1&actor=ada").content.decode()
    expected = sum(1 for i in range(60) if i % 3 == 1 and i % 2)
    assert f"{expected} entries matching" in filtered
    assert (
        "10 entries matching"
        in staff.get("/jobs/audit/?action=demo_1&actor=system").content.decode()
    )
    by_type = staff.get("/jobs/audit/?object_type=providerconnection").content.decode()
    assert "2 entries matching" in by_type and "connection_archived" in by_type
    # Nonsense filters come back as form errors, never a 500.
    odd = staff.get("/jobs/audit/?action=%3Cscript%3E&object_type=zzz&page=99")
    assert odd.status_code == 200 and "<script>" not in odd.content.decode()
    assert "Page 2 of 2" in odd.content.decode()  # the last page when past the end


@pytest.mark.django_db(transaction=True)
def test_history_actions_are_audited(sandbox_connection, history: History) -> None:  # type: ignore[no-untyped-def]
    staff_user = make_user("staff", username="root")
    member = make_user("member", username="ada")
    import_now(connection=sandbox_connection, user=member)
    job = Job.objects.get(provider_job_id=history.succeeded[0])
    ada = client_for("member")
    ada.force_login(member)
    deleted = ada.post(f"/jobs/{job.pk}/delete-model/", {"confirm": "on"})
    assert deleted.status_code == 302
    # A worker deletes it (no worker here: done as its task would).
    job_control_run(control_id=JobControl.objects.get(job=job, action="delete_model").pk)
    assert Job.objects.get(pk=job.pk).model_deleted_at
    assert ada.get(f"/jobs/export/?job={job.pk}").status_code == 200
    link, _ = share_link_create(user=member, job_ids=[job.pk])
    share_link_revoke(link=link, user=member)
    root = client_for("staff")
    root.force_login(staff_user)
    root.post(f"/jobs/connections/{sandbox_connection.pk}/archive/", {"confirm": "on"})
    expected = {
        "import_requested": "ada", "import_succeeded": "system", "model_deleted": "ada",
        "bundle_exported": "ada", "share_link_created": "ada", "share_link_revoked": "ada",
        "connection_archived": "root",
    }  # fmt: skip
    for action, who in expected.items():
        page = root.get(f"/jobs/audit/?action={action}").content.decode()
        assert "1 entry matching" in page, action
        assert f"<td>{who}</td>" in page, action
