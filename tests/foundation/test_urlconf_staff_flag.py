"""Walks the whole URLconf: the staff flag grants nothing by itself. On every page that is not
public and not the Django admin, a staff account with the viewer role gets what a viewer gets,
and one without a role what an account without a role gets; and no POST that writes is open to
viewers (only the user's own notification settings, password and session are)."""

from __future__ import annotations

import re

import pytest

from tests.foundation.test_urlconf_login_required import PUBLIC, all_urls
from tests.permissions import client_for, outcome

pytestmark = pytest.mark.django_db

OUTSIDE = (*PUBLIC, re.compile(r"^/admin/"))
# What a viewer may POST: their own settings and session, nothing shared.
VIEWER_POSTS = (
    re.compile(r"^/jobs/notifications/$"),
    re.compile(r"^/runs/columns/$"),  # the runs-list columns they see
    re.compile(r"^/accounts/password/$"),
    re.compile(r"^/accounts/logout/$"),
    # Their own API tokens: read-only ones for a viewer (tests/core/test_api_tokens.py).
    re.compile(r"^/accounts/tokens/"),
)


def _app_urls() -> list[str]:
    return [url for url in all_urls() if not any(p.match(url) for p in OUTSIDE)]


def test_staff_flag_changes_no_outcome() -> None:
    differences = []
    for url in _app_urls():
        for method in ("get", "post"):
            for staff, plain in (("staff_viewer", "viewer"), ("staff_norole", "norole")):
                got = outcome(getattr(client_for(staff), method)(url))
                want = outcome(getattr(client_for(plain), method)(url))
                if got != want:
                    differences.append(f"{method.upper()} {url}: {staff} {got}, {plain} {want}")
    assert not differences, "the staff flag changed the outcome:\n" + "\n".join(differences)


def test_no_write_open_to_viewers() -> None:
    open_posts = []
    for url in _app_urls():
        if any(p.match(url) for p in VIEWER_POSTS):
            continue
        for role in ("viewer", "staff_viewer"):
            got = outcome(client_for(role).post(url))
            if got not in (403, 405):
                open_posts.append(f"POST {url} as {role}: {got}")
    assert not open_posts, "writes open to viewers:\n" + "\n".join(open_posts)
