"""The permission matrix every view is tested with.

``assert_matrix(url, {role: expected})`` requests ``url`` as each role and compares the outcome:
an HTTP status code, or ``LOGIN`` for "redirected to the login page". ``share`` is an outsider
holding a share link: not signed in, with only the token in the URL it requests.

Two staff columns check that the staff flag grants nothing by itself: ``staff_viewer`` (staff
flag + viewer role) and ``staff_norole`` (staff flag, no role). Unless a test names them (the
Django admin, where the flag opens the door), they must get exactly what ``viewer`` and
``norole`` get, and ``assert_matrix`` adds them whenever those columns are given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core import roles

LOGIN = "login"
ROLES = ("anonymous", "norole", "viewer", "member", "staff", "staff_viewer", "staff_norole")
# The staff flag alone changes nothing in Tuneboard's pages: same outcome as the role alone.
STAFF_COLUMNS = {"staff_viewer": "viewer", "staff_norole": "norole"}
SHARE = "share"  # a share-token holder: anonymous, the token is part of the URL


def make_user(role: str, username: str | None = None) -> Any:
    """A user holding exactly ``role`` (``norole``: signed in, no group; ``staff``: admin;
    ``staff_viewer``, ``staff_norole``: the staff flag with the viewer role, or no role)."""
    User = get_user_model()
    user = User.objects.create_user(username=username or f"{role}-user", password="pw-unused")
    if role.startswith("staff"):
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if role == "staff":
        user.groups.add(Group.objects.get(name=roles.ADMIN))
    elif role in (roles.VIEWER, roles.MEMBER, "staff_viewer"):
        user.groups.add(Group.objects.get(name=role.removeprefix("staff_")))
    elif role not in ("norole", "staff_norole"):
        raise ValueError(role)
    return user


def client_for(role: str) -> Client:
    client = Client()
    if role not in ("anonymous", SHARE):
        User = get_user_model()
        user = User.objects.filter(username=f"{role}-user").first() or make_user(role)
        client.force_login(user)
    return client


def outcome(response: Any) -> int | str:
    if response.status_code in (301, 302):
        location = response["Location"]
        if location.startswith(reverse("login")) or location.startswith("/admin/login/"):
            return LOGIN
    return response.status_code


def with_staff_columns(url: str, expected: dict[str, int | str]) -> dict[str, int | str]:
    """``expected`` with the staff columns it does not name, copied from their role's column.
    In the Django admin the staff flag does open the door: there they must be named."""
    full = dict(expected)
    for column, role in STAFF_COLUMNS.items():
        if column not in full and role in full:
            assert not url.startswith("/admin/"), f"{url}: name the {column} column"
            full[column] = full[role]
    return full


def assert_matrix(
    url: str,
    expected: dict[str, int | str],
    *,
    method: str = "get",
    data: dict[str, Any] | None = None,
    before: Callable[[], None] | None = None,
) -> None:
    failures = []
    expected = with_staff_columns(url, expected)
    for role, want in expected.items():
        if before:
            before()
        client = client_for(role)
        response = getattr(client, method)(url, data or {})
        got = outcome(response)
        if got != want:
            failures.append(f"{role}: expected {want}, got {got}")
    assert not failures, f"{method.upper()} {url}: " + "; ".join(failures)
