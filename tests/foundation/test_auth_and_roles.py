from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from core import roles
from core.models import TaskProbe
from tests.permissions import LOGIN, assert_matrix, client_for, make_user

pytestmark = pytest.mark.django_db


def _codenames(group: str) -> set[str]:
    perms = Group.objects.get(name=group).permissions.select_related("content_type")
    return {f"{p.content_type.app_label}.{p.codename}" for p in perms}


def test_role_groups_hold_their_permissions() -> None:
    assert _codenames(roles.VIEWER) == {roles.READ}
    assert _codenames(roles.MEMBER) == {roles.READ, roles.ACT}
    assert _codenames(roles.ADMIN) == {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Permission.objects.select_related("content_type")
    }


def test_login_and_logout_flow() -> None:
    make_user(roles.MEMBER, username="ada")
    client = Client()
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b"<main" in page.content
    bad = client.post(reverse("login"), {"username": "ada", "password": "wrong"})
    assert bad.status_code == 200 and b"didn't match" in bad.content
    ok = client.post(
        reverse("login"), {"username": "ada", "password": "pw-unused", "next": "/system/"}
    )
    assert ok.status_code == 302 and ok["Location"] == "/system/"
    assert client.get("/system/").status_code == 200
    out = client.post(reverse("logout"))
    assert out.status_code == 302
    assert client.get("/system/").status_code == 302


def test_read_pages_matrix() -> None:
    for url in ("/", "/datasets/", "/compare/", "/system/"):
        assert_matrix(
            url,
            {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200},
        )


def test_member_action_matrix() -> None:
    assert_matrix(
        "/system/probe/",
        {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 302, "staff": 302},
        method="post",
    )
    # Only the two allowed posts created probes.
    assert TaskProbe.objects.count() == 2
    assert set(TaskProbe.objects.values_list("requested_by__username", flat=True)) == {
        "member-user",
        "staff-user",
    }


def test_member_action_rejects_get() -> None:
    assert_matrix("/system/probe/", {"member": 405})


def test_admin_only_for_staff() -> None:
    no_role = {"anonymous": LOGIN, "norole": LOGIN, "viewer": LOGIN, "member": LOGIN}
    # The staff flag opens the admin's door; without the admin role nothing is behind it.
    assert_matrix("/admin/", {**no_role, "staff": 200, "staff_viewer": 200, "staff_norole": 200})
    assert_matrix(
        "/admin/core/taskprobe/",
        {**no_role, "staff": 200, "staff_viewer": 403, "staff_norole": 403},
    )
    for role in ("staff_viewer", "staff_norole"):
        index = client_for(role).get("/admin/").content.decode()
        assert "have permission to view or edit anything" in index


def test_nav_shows_admin_link_only_to_staff() -> None:
    from tests.permissions import client_for

    assert b'href="/admin/"' in client_for("staff").get("/").content
    assert b'href="/admin/"' not in client_for("member").get("/").content
    # Admin pages in the menu only for admins: the staff flag on a viewer shows no dead links.
    assert b'href="/jobs/audit/"' in client_for("staff").get("/").content
    staff_viewer = client_for("staff_viewer").get("/").content
    assert b'href="/jobs/audit/"' not in staff_viewer
    assert b'href="/jobs/connections/"' not in staff_viewer


def test_viewer_sees_no_member_buttons() -> None:
    from tests.permissions import client_for

    assert b"Send a test task" in client_for("member").get("/system/").content
    assert b"Send a test task" not in client_for("viewer").get("/system/").content


def test_csrf_enforced_on_posts() -> None:
    user = make_user(roles.MEMBER)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.post("/system/probe/").status_code == 403
    assert TaskProbe.objects.count() == 0
