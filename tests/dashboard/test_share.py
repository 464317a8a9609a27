"""Share links: created by members, shown once, public read-only pages that leak nothing,
one indistinguishable 404 for revoked, expired and unknown tokens, live then frozen data."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import AuditEntry
from dashboard import services
from dashboard.models import ShareLink
from jobs import metrics
from jobs.models import Job, MetricPoint
from tests.dashboard.conftest import API_KEY, XSS
from tests.dashboard.helpers import db_points, json_script, traces
from tests.permissions import LOGIN, SHARE, assert_matrix, client_for, make_user, outcome

pytestmark = pytest.mark.django_db


def create_link(client, **data) -> str:  # type: ignore[no-untyped-def]
    """POST the share form as a member; return the token shown (once) on the next page."""
    response = client.post("/share-links/new/", data)
    assert response.status_code == 302 and response["Location"] == "/share-links/"
    page = client.get("/share-links/").content.decode()
    match = re.search(r'value="http://testserver/share/([A-Za-z0-9_-]+)/"', page)
    assert match, "the new link is shown"
    again = client.get("/share-links/").content.decode()
    assert match.group(1) not in again, "…but only once"
    return match.group(1)


def forbidden_strings(job: Job) -> list[str]:
    connection = job.connection
    strings = [
        job.provider_job_id, job.training_file_id, job.validation_file_id, job.fine_tuned_model,
        connection.name, connection.base_url, "acme-internal", "acme-org", API_KEY,
        f"••••{connection.api_key_hint}", str(job.pk), job.notes,
    ]  # fmt: skip
    if job.created_by:
        strings.append(job.created_by.get_username())
    if job.training_dataset:
        strings.append(job.training_dataset.name)
    return [s for s in strings if s]


def test_a_shared_run_shows_its_charts_and_nothing_private(make_job, make_dataset_row) -> None:
    creator = make_user("member", "creator-alice")
    job = make_job(steps=30, name="Support bot v3", notes="internal: customer X",
                   created_by=creator, training_dataset=make_dataset_row("secret-customer-data"))  # fmt: skip
    member = client_for("member")
    token = create_link(member, job=str(job.pk), label="", expires_in_days="7")
    link = ShareLink.objects.get()
    assert len(token) >= 43 and link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert link.expires_at and link.kind == "run" and link.label == "Support bot v3"
    page = client_for(SHARE).get(f"/share/{token}/")
    assert page.status_code == 200
    html = page.content.decode()
    for text in ("Support bot v3", "Fit diagnosis", "Hyperparameters", "data-tb-run-charts",
                 "vendor/plotly.min.js", "js/run_charts.js", "Final training loss"):  # fmt: skip
        assert text in html, text
    figures = json_script(html, "tb-run-figures")
    (train,) = traces(figures["loss"], "train_loss", "smoothed")
    assert train["y"] == [v for _, v in db_points(job, "train_loss")]
    assert figures["loss"]["layout"]["meta"]["runs"] == ["r1"]
    for secret in forbidden_strings(job):
        assert secret not in html, secret
    # No way into the app: no navigation, no links except static files and the skip link.
    assert "<nav" not in html and "Log out" not in html
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(h.startswith("/static/") or h == "#main" for h in hrefs), hrefs
    # A signed-in member sees the same public page (no navigation either).
    assert "<nav" not in member.get(f"/share/{token}/").content.decode()
    # Its JSON endpoints are just as clean.
    for path in ("metrics.json?after_step=0", "figures.json?x_axis=epoch"):
        body = client_for(SHARE).get(f"/share/{token}/{path}").content.decode()
        for secret in forbidden_strings(job):
            assert secret not in body, (path, secret)
    assert page["X-Robots-Tag"] == "noindex, nofollow" and page["Referrer-Policy"] == "no-referrer"
    assert "no-cache" in page["Cache-Control"]


def test_revoked_expired_and_unknown_tokens_get_the_same_404(make_job) -> None:
    job = make_job(steps=10)
    member = client_for("member")
    revoked = create_link(member, job=str(job.pk))
    expired = create_link(member, job=str(job.pk))
    valid = create_link(member, job=str(job.pk))
    link = ShareLink.objects.get(token_hash=hashlib.sha256(revoked.encode()).hexdigest())
    response = member.post(f"/share-links/{link.pk}/revoke/", {"confirm": "yes"})
    assert response.status_code == 302
    ShareLink.objects.filter(token_hash=hashlib.sha256(expired.encode()).hexdigest()).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    visitor = client_for(SHARE)
    assert visitor.get(f"/share/{valid}/").status_code == 200
    bodies = set()
    for token in (
        revoked,
        expired,
        valid[:-1] + ("A" if valid[-1] != "A" else "B"),
        "x",
        "a" * 500,
    ):
        for path in ("", "metrics.json", "figures.json"):
            response = visitor.get(f"/share/{token}/{path}")
            assert response.status_code == 404, (token, path)
            bodies.add(response.content)
    assert len(bodies) == 1
    assert b"does not exist, has expired or has been revoked" in bodies.pop()


def test_share_json_is_scoped_to_the_links_own_runs(make_job) -> None:
    job = make_job(steps=0, status="running", finished_at=None, total_steps=40)
    other = make_job(steps=30, name="other run")
    metrics.upsert(job.pk, [{"step": s, "train_loss": 1 / s} for s in range(1, 11)])
    token = create_link(client_for("member"), job=str(job.pk))
    visitor = client_for(SHARE)
    live = visitor.get(f"/share/{token}/metrics.json?after_step=7").json()
    assert [p["step"] for p in live["points"]] == [8, 9, 10] and live["terminal"] is False
    for query in ("?run=r2", f"?run={other.pk}", "?run=r0", "?run=../"):
        assert visitor.get(f"/share/{token}/metrics.json{query}").status_code == 404, query
    # The app's own endpoints stay behind the login.
    for path in (f"/runs/{other.pk}/metrics.json", f"/runs/{job.pk}/metrics.json",
                 f"/runs/{job.pk}/figures.json", f"/runs/{job.pk}/export.csv"):  # fmt: skip
        assert outcome(visitor.get(path)) == LOGIN, path


def test_a_running_run_is_live_then_frozen_when_it_finishes(make_job) -> None:
    job = make_job(steps=0, status="running", finished_at=None, total_steps=30, name="live one")
    metrics.upsert(job.pk, [{"step": s, "train_loss": 2 / s} for s in range(1, 11)])
    token = create_link(client_for("member"), job=str(job.pk))
    visitor = client_for(SHARE)
    html = visitor.get(f"/share/{token}/").content.decode()
    config = json_script(html, "tb-run-config")
    assert (
        config["terminal"] is False
        and config["metrics_url"] == f"/share/{token}/metrics.json?run=r1"
    )
    assert config["last_step"] == 10
    assert ShareLink.objects.get().snapshot is None
    # While it runs, its last values are the latest, not the final ones.
    assert "Latest training loss" in html and "Latest full-validation accuracy" in html
    assert "Final training loss" not in html and "Final full-validation accuracy" not in html
    # The run finishes (its final sync done): the next view freezes what the page shows.
    metrics.upsert(job.pk, [{"step": s, "train_loss": 2 / s, "full_valid_loss": 0.5 if s == 30 else None}
                            for s in range(11, 31)])  # fmt: skip
    Job.objects.filter(pk=job.pk).update(status="succeeded", finished_at=timezone.now(),
                                         last_step=30, next_poll_at=None)  # fmt: skip
    html = visitor.get(f"/share/{token}/").content.decode()
    link = ShareLink.objects.get()
    assert link.snapshot is not None and link.snapshot_at is not None
    assert json_script(html, "tb-run-config")["terminal"] is True
    assert "Final training loss" in html and "Latest training loss" not in html
    frozen = json_script(html, "tb-run-figures")
    assert set(link.snapshot) >= {"figures", "runs", "diagnosis"}
    assert link.snapshot["runs"][0]["hyperparameters"]["n_epochs"] == 3
    # Later changes to the run do not reach the frozen page.
    Job.objects.filter(pk=job.pk).update(name="renamed")
    MetricPoint.objects.filter(job=job).delete()
    again = visitor.get(f"/share/{token}/").content.decode()
    assert json_script(again, "tb-run-figures") == frozen and "live one" in again
    epoch = visitor.get(f"/share/{token}/figures.json?x_axis=epoch").json()
    (train,) = traces(epoch["figures"]["loss"], "train_loss", "smoothed")
    assert epoch["x_axis"] == "epoch" and train["x"][-1] == 3.0
    done = visitor.get(f"/share/{token}/metrics.json?after_step=28").json()
    assert done["terminal"] is True and [p["step"] for p in done["points"]] == [29, 30]


def test_a_shared_comparison(make_job) -> None:
    a = make_job(steps=30, name="A", seed=1)
    b = make_job(steps=30, name="B", seed=2, hyperparameters={"n_epochs": 3, "batch_size": 8,
                                                            "learning_rate_multiplier": 1.8})  # fmt: skip
    member = client_for("member")
    compare = member.get(f"/compare/?runs={a.pk},{b.pk}").content.decode()
    assert "Share this comparison" in compare
    token = create_link(member, runs=f"{a.pk},{b.pk}", label="A vs B")
    assert ShareLink.objects.get().kind == "comparison"
    html = client_for(SHARE).get(f"/share/{token}/").content.decode()
    assert "A vs B" in html and "Batch size" in html and "js/compare_page.js" in html
    figures = json_script(html, "tb-compare-figures")
    assert figures["loss"]["layout"]["meta"]["runs"] == ["r1", "r2"]
    for run_id, job in (("r1", a), ("r2", b)):
        (train,) = [t for t in traces(figures["loss"], "train_loss", "smoothed")
                    if t["meta"]["run"] == run_id]  # fmt: skip
        assert train["y"] == [v for _, v in db_points(job, "train_loss")]
        for secret in forbidden_strings(job):
            assert secret not in html, secret
    assert "<nav" not in html and "/compare/" not in html and "/jobs/" not in html
    assert ShareLink.objects.get().snapshot is not None  # both finished: frozen at once
    assert client_for(SHARE).get(f"/share/{token}/metrics.json?run=r2").status_code == 200
    assert client_for(SHARE).get(f"/share/{token}/metrics.json?run=r3").status_code == 404


def test_a_shared_comparison_marks_the_latest_values_of_a_run_still_going(make_job) -> None:
    done = make_job(steps=30, name="done", seed=1)
    going = make_job(steps=20, name="going", seed=2, status="running", finished_at=None)
    token = create_link(client_for("member"), runs=f"{done.pk},{going.pk}")
    html = client_for(SHARE).get(f"/share/{token}/").content.decode()
    assert ShareLink.objects.get().snapshot is None  # live: one run is still going
    table = html.split('id="tb-metrics-title"')[1].split("</section>")[0]
    rows = re.findall(r"<tr><th scope=\"row\">.*?</tr>", table, re.S)
    assert len(rows) == 2
    marked = [re.findall(r'data-key="([a-z_]+)"[^>]*data-latest="true"', row) for row in rows]
    assert marked == [[], ["final_train_loss", "final_full_valid_loss", "final_train_accuracy",
                           "final_full_valid_accuracy"]]  # fmt: skip
    assert "Final train loss" not in html and ">Train loss<" in html


def test_creating_listing_and_revoking_is_audited_and_scoped(make_job) -> None:
    job = make_job(steps=10)
    alice = client_for("member")
    token = create_link(alice, job=str(job.pk))
    link = ShareLink.objects.get()
    created = AuditEntry.objects.get(action="share_link_created")
    assert created.object_id == str(link.pk) and token not in json.dumps(created.detail)
    assert token not in created.object_repr
    # Another member neither sees nor revokes it; an admin does both.
    bob = make_user("member", "bob")
    bob_client = client_for("viewer")
    bob_client.force_login(bob)
    assert f"/share-links/{link.pk}/revoke/" not in bob_client.get("/share-links/").content.decode()
    assert bob_client.post(f"/share-links/{link.pk}/revoke/", {"confirm": "yes"}).status_code == 404
    staff = client_for("staff")
    assert str(link.pk) in staff.get("/share-links/").content.decode()
    assert staff.post(f"/share-links/{link.pk}/revoke/", {"confirm": "yes"}).status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None
    revoked = AuditEntry.objects.get(action="share_link_revoked")
    assert revoked.object_id == str(link.pk)
    # Revoking again changes nothing (and is not audited twice).
    services.share_link_revoke(link=link, user=None)
    assert AuditEntry.objects.filter(action="share_link_revoked").count() == 1
    # Viewers cannot create links; bad targets are refused.
    assert client_for("viewer").post("/share-links/new/", {"job": str(job.pk)}).status_code == 403
    response = alice.post("/share-links/new/", {"runs": "00000000-0000-0000-0000-000000000001"})
    assert response.status_code == 302 and ShareLink.objects.count() == 1


def test_views_are_counted(make_job) -> None:
    job = make_job(steps=10)
    token = create_link(client_for("member"), job=str(job.pk))
    visitor = client_for(SHARE)
    visitor.get(f"/share/{token}/")
    visitor.get(f"/share/{token}/")
    visitor.get(f"/share/{token}/metrics.json")
    link = ShareLink.objects.get()
    assert link.view_count == 2 and link.last_viewed_at is not None


def test_share_pages_escape_user_content(make_job) -> None:
    job = make_job(steps=20, name=XSS, tags=[XSS])
    other = make_job(steps=20, name=XSS + "2")
    member = client_for("member")
    run_token = create_link(member, job=str(job.pk), label=XSS)
    cmp_token = create_link(member, runs=f"{job.pk},{other.pk}")
    for token in (run_token, cmp_token):
        html = client_for(SHARE).get(f"/share/{token}/").content.decode()
        assert XSS not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
        body = client_for(SHARE).get(f"/share/{token}/figures.json").json()
        assert XSS not in json.dumps(body["figures"])
    listing = member.get("/share-links/").content.decode()
    assert XSS not in listing


def test_share_link_permission_matrix(make_job) -> None:
    job = make_job(steps=10)
    alice = client_for("viewer")
    alice.force_login(make_user("member", "alice"))
    token = create_link(alice, job=str(job.pk))  # someone else's link for "member"
    link = ShareLink.objects.get()
    everyone = {
        "anonymous": 200,
        "norole": 200,
        "viewer": 200,
        "member": 200,
        "staff": 200,
        SHARE: 200,
    }
    assert_matrix(f"/share/{token}/", everyone)
    assert_matrix(f"/share/{token}/metrics.json", everyone)
    assert_matrix(f"/share/{token}/figures.json", everyone)
    assert_matrix("/share-links/", {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403,
                                    "viewer": 403, "member": 200, "staff": 200})  # fmt: skip
    assert_matrix("/share-links/new/", {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403,
                                        "viewer": 403, "member": 302, "staff": 302},
                  method="post", data={"job": str(job.pk)})  # fmt: skip
    assert_matrix(f"/share-links/{link.pk}/revoke/", {"anonymous": LOGIN, SHARE: LOGIN,
                                                     "norole": 403, "viewer": 403, "member": 404,
                                                     "staff": 302}, method="post",
                  data={"confirm": "yes"})  # fmt: skip
    assert_matrix("/share-links/", {"member": 405}, method="post")


def test_admin_lists_and_revokes_share_links(make_job) -> None:
    job = make_job(steps=10)
    token = create_link(client_for("member"), job=str(job.pk))
    link = ShareLink.objects.get()
    staff = client_for("staff")
    listing = staff.get("/admin/dashboard/sharelink/")
    assert listing.status_code == 200 and link.label.encode() in listing.content
    detail = staff.get(f"/admin/dashboard/sharelink/{link.pk}/change/")
    assert detail.status_code == 200 and link.token_hash.encode() in detail.content
    assert token.encode() not in detail.content
    assert staff.get("/admin/dashboard/sharelink/add/").status_code == 403
    asked = staff.post("/admin/dashboard/sharelink/", {"action": "revoke",
                                                       "_selected_action": [link.pk]})  # fmt: skip
    assert asked.status_code == 200 and "gets “not found”" in asked.content.decode()
    link.refresh_from_db()
    assert link.revoked_at is None
    response = staff.post("/admin/dashboard/sharelink/", {"action": "revoke", "post": "yes",
                                                          "_selected_action": [link.pk]})  # fmt: skip
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None
    assert AuditEntry.objects.filter(action="share_link_revoked", object_id=str(link.pk)).exists()
    assert client_for(SHARE).get(f"/share/{token}/").status_code == 404
