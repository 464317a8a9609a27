"""Permission matrix of every dashboard URL (share pages: test_share.py)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.permissions import LOGIN, SHARE, assert_matrix, make_user

pytestmark = pytest.mark.django_db

READ = {"anonymous": LOGIN, SHARE: LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
WRITE = {
    "anonymous": LOGIN,
    SHARE: LOGIN,
    "norole": 403,
    "viewer": 403,
    "member": 302,
    "staff": 302,
}


def test_reading_pages_need_the_viewer_role(make_job) -> None:
    a, b = make_job(steps=10), make_job(steps=10)
    pair = f"{a.pk},{b.pk}"
    for url in ("/", "/?q=run&sort=cost&dir=asc", f"/compare/?runs={pair}", "/compare/",
                f"/compare/figures.json?runs={pair}", f"/compare/export.csv?runs={pair}",
                f"/runs/{a.pk}/figures.json", f"/runs/{a.pk}/metrics.json?after_step=3",
                f"/runs/{a.pk}/export.csv", f"/runs/{a.pk}/export.json"):  # fmt: skip
        assert_matrix(url, READ)


def test_unknown_runs_are_404_for_readers(make_job) -> None:
    missing = "00000000-0000-0000-0000-000000000042"
    expected = {**READ, "viewer": 404, "member": 404, "staff": 404}
    for url in (f"/runs/{missing}/figures.json", f"/runs/{missing}/metrics.json",
                f"/runs/{missing}/export.csv", f"/runs/{missing}/export.json"):  # fmt: skip
        assert_matrix(url, expected)


def test_writes_need_the_member_role_and_post(make_job) -> None:
    job = make_job(tags=["t"])
    for url, data in ((f"/runs/{job.pk}/tags/", {"tags": "a, b"}),
                      (f"/runs/{job.pk}/notes/", {"notes": "n"})):  # fmt: skip
        assert_matrix(url, WRITE, method="post", data=data)
        assert_matrix(url, {"viewer": 405, "member": 405, "anonymous": LOGIN}, method="get")
    for url in ("/runs/00000000-0000-0000-0000-000000000042/tags/",):
        assert_matrix(url, {"member": 404, "viewer": 403}, method="post", data={"tags": "x"})


def test_writes_need_a_csrf_token(make_job) -> None:
    job = make_job()
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("member", "csrf-member"))
    assert client.post(f"/runs/{job.pk}/tags/", {"tags": "x"}).status_code == 403
    assert client.post("/share-links/new/", {"job": str(job.pk)}).status_code == 403
    job.refresh_from_db()
    assert job.tags == []
