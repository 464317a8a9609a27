"""Destructive actions ask first (issue 14, item 8): cancel, pause, delete the model, archive a
connection and revoke a share link each show a page that names what will happen and what it
costs or loses; only a POST from that page acts. No JavaScript is involved."""

from __future__ import annotations

import html
import re

import pytest
from django.utils import timezone

from core.models import AuditEntry
from dashboard.models import ShareLink
from dashboard.services import share_link_create
from jobs.models import JobControl, ProviderConnection
from jobs.services import connection_save
from tests.jobs.test_views import (
    DEAD_URL,
    SECRET,
    _catalog,  # noqa: F401 - autouse: the cost lines read the catalog
    make_job,
)
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for, make_user

pytestmark = pytest.mark.django_db

CONFIRM = {"confirm": "yes"}


@pytest.fixture
def offline() -> ProviderConnection:
    """Nothing here calls the provider: controls are asked for, a worker would do them."""
    return connection_save(name="Offline", kind="sandbox", base_url=DEAD_URL, api_key=SECRET)


def _text(response) -> str:  # type: ignore[no-untyped-def]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.content.decode())).split())


def test_job_page_controls_lead_to_confirmation_pages(offline: ProviderConnection) -> None:
    job = make_job(offline, None)
    page = client_for("member").get(f"/jobs/{job.pk}/").content.decode()
    for action in ("cancel", "pause"):
        assert f'<form method="get" action="/jobs/{job.pk}/{action}/">' in page
        assert f'<form method="post" action="/jobs/{job.pk}/{action}/">' not in page


@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_a_control_without_confirmation_does_not_act(
    offline: ProviderConnection, action: str
) -> None:
    job = make_job(offline, None)
    member = client_for("member")
    for response in (
        member.get(f"/jobs/{job.pk}/{action}/"),
        member.post(f"/jobs/{job.pk}/{action}/"),
        member.post(f"/jobs/{job.pk}/{action}/", {"confirm": "on"}),
    ):
        assert response.status_code == 200
        assert '<input type="hidden" name="confirm" value="yes">' in response.content.decode()
    assert not JobControl.objects.filter(job=job).exists()
    assert not AuditEntry.objects.filter(action=f"job_{action}").exists()
    response = member.post(f"/jobs/{job.pk}/{action}/", CONFIRM)
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert JobControl.objects.get(job=job).action == action


def test_cancel_page_says_what_stops_and_what_is_billed(offline: ProviderConnection) -> None:
    job = make_job(offline, None, name="support-bot", trained_tokens=123_456)
    text = _text(client_for("member").get(f"/jobs/{job.pk}/cancel/"))
    assert "Cancel support-bot?" in text
    assert "Training stops at the provider at step 12 of 60 (20%)" in text
    assert "A cancelled job cannot be resumed. Pausing instead keeps it resumable." in text
    # gpt-4o-mini trains at $3.00 per 1M tokens in the test catalog.
    assert "The 123,456 tokens trained so far are billed ($0.37)." in text
    assert "No fine-tuned model is produced from this job." in text
    assert "Cancel the job" in text and "Keep the job" in text

    queued = make_job(offline, None, status="queued", last_step=None)
    text = _text(client_for("member").get(f"/jobs/{queued.pk}/cancel/"))
    assert "Nothing has been trained yet, so nothing is billed." in text
    assert "Pausing instead" not in text  # only a running job can be paused


def test_pause_page_says_it_can_be_resumed(offline: ProviderConnection) -> None:
    job = make_job(offline, None, name="support-bot")
    text = _text(client_for("member").get(f"/jobs/{job.pk}/pause/"))
    assert "Pause support-bot?" in text
    assert "waits as Paused until someone resumes it" in text and "Pause the job" in text


def test_a_control_that_cannot_apply_says_why_and_offers_no_form(
    offline: ProviderConnection,
) -> None:
    done = make_job(offline, None, status="succeeded")
    response = client_for("member").get(f"/jobs/{done.pk}/cancel/")
    assert "The job is succeeded, so it cannot be cancelled." in _text(response)
    assert 'name="confirm"' not in response.content.decode()
    ProviderConnection.objects.filter(pk=offline.pk).update(archived_at=timezone.now())
    running = make_job(offline, None)
    response = client_for("member").get(f"/jobs/{running.pk}/pause/")
    assert "is archived, so the job cannot be paused from here" in _text(response)


def test_control_confirmation_permission_matrix(offline: ProviderConnection) -> None:
    job = make_job(offline, None)
    for action in ("cancel", "pause"):
        url = f"/jobs/{job.pk}/{action}/"
        assert_matrix(url, {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 200,
                            "staff": 200})  # fmt: skip
        assert_matrix(url, {"anonymous": LOGIN, "norole": 403, "viewer": 403},
                      method="post", data=CONFIRM)  # fmt: skip
    assert not JobControl.objects.exists()


def test_delete_model_page_names_what_is_lost(offline: ProviderConnection) -> None:
    job = make_job(offline, None, status="succeeded", fine_tuned_model="ft:gpt-4o-mini:acme::x1")
    member = client_for("member")
    text = _text(member.get(f"/jobs/{job.pk}/delete-model/"))
    assert "The model id stops serving" in text and "It cannot be undone" in text
    refused = member.post(f"/jobs/{job.pk}/delete-model/")
    assert refused.status_code == 200 and "Tick the box to confirm." in _text(refused)
    assert not JobControl.objects.filter(job=job).exists()


def test_archive_page_names_the_jobs_no_longer_followed(offline: ProviderConnection) -> None:
    make_job(offline, None, name="still-training")
    make_job(offline, None, name="done", status="succeeded")
    staff = client_for("staff")
    url = f"/jobs/connections/{offline.pk}/archive/"
    connection_page = staff.get(f"/jobs/connections/{offline.pk}/history/").content.decode()
    assert f'href="{url}"' in connection_page
    text = _text(staff.get(url))
    assert "Archive the connection “Offline”?" in text
    assert "1 job still active at the provider (still-training) is no longer followed" in text
    assert "being billed" in text and "its 2 jobs" in text and "cannot be undone" in text
    refused = staff.post(url)  # the box must be ticked
    assert refused.status_code == 200
    assert "Tick the box to archive the connection." in _text(refused)
    assert ProviderConnection.objects.get(pk=offline.pk).archived_at is None
    assert staff.post(url, {"confirm": "on"}).status_code == 302
    assert ProviderConnection.objects.get(pk=offline.pk).archived_at is not None
    assert "is already archived" in _text(staff.get(url))


def test_archive_confirmation_permission_matrix(offline: ProviderConnection) -> None:
    url = f"/jobs/connections/{offline.pk}/archive/"
    assert_matrix(url, {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 403,
                        "staff": 200})  # fmt: skip
    assert_matrix(url, {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 403},
                  method="post", data={"confirm": "on"})  # fmt: skip
    assert ProviderConnection.objects.get(pk=offline.pk).archived_at is None


def test_revoking_a_share_link_asks_first(offline: ProviderConnection) -> None:
    owner = make_user("member")
    job = make_job(offline, None, name="support-bot")
    link, _ = share_link_create(user=owner, job_ids=[job.pk], label="for the client")
    member = client_for("member")
    listing = member.get("/share-links/").content.decode()
    assert f'<form method="get" action="/share-links/{link.pk}/revoke/">' in listing
    url = f"/share-links/{link.pk}/revoke/"
    text = _text(member.get(url))
    assert "Revoke the share link “for the client”?" in text
    assert "Anyone who opens this link to the run support-bot gets “not found”" in text
    assert "nobody has opened it yet" in text and "cannot be undone" in text
    assert member.post(url).status_code == 200
    assert ShareLink.objects.get(pk=link.pk).revoked_at is None
    # From the run page the way back is kept through the confirmation.
    page = member.get(url, {"next": f"/jobs/{job.pk}/"}).content.decode()
    assert f'<input type="hidden" name="next" value="/jobs/{job.pk}/">' in page
    outside = member.get(url, {"next": "https://elsewhere.example/"}).content.decode()
    assert "elsewhere.example" not in outside
    response = member.post(url, {**CONFIRM, "next": f"/jobs/{job.pk}/"})
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert ShareLink.objects.get(pk=link.pk).revoked_at is not None
    assert "This share link is already revoked." in _text(member.get(url))


def test_revoke_confirmation_permission_matrix(offline: ProviderConnection) -> None:
    owner = make_user("member", "owner")
    link, _ = share_link_create(user=owner, job_ids=[make_job(offline, None).pk], label="x")
    url = f"/share-links/{link.pk}/revoke/"
    # Another member's link is not found; an admin sees every link.
    assert_matrix(url, {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403, "viewer": 403,
                        "member": 404, "staff": 200})  # fmt: skip
    assert ShareLink.objects.get(pk=link.pk).revoked_at is None
