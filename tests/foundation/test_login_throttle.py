"""Failed logins are throttled per account and per client address (django-axes), the lockout
shows on the login page and in the admin, and every page carries the Content-Security-Policy.
Each test's attempts live in its own transaction, so no test inherits another's lockout."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from core.client_ip import client_ip
from tests.permissions import make_user

pytestmark = pytest.mark.django_db

LIMIT = settings.AXES_FAILURE_LIMIT
PASSWORD = "pw-unused"  # what make_user gives every account


def login(username: str, password: str, *, ip: str = "10.0.0.1", **extra: Any) -> Any:
    return Client(REMOTE_ADDR=ip, **extra).post(
        reverse("login"), {"username": username, "password": password}
    )


def assert_locked_out(response: Any) -> None:
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins" in body and 'role="alert"' in body
    assert 'name="password"' in body  # still the login page: a form to try again later


def test_an_account_is_locked_after_the_limit_whatever_the_address() -> None:
    make_user("member", username="ada")
    make_user("member", username="bob")
    for attempt in range(LIMIT - 1):
        response = login("ada", "wrong", ip=f"10.0.1.{attempt}")
        assert response.status_code == 200 and b"didn't match" in response.content
    assert_locked_out(login("ada", "wrong", ip="10.0.1.200"))
    # The right password does not get in while the lock holds, from anywhere.
    assert_locked_out(login("ada", PASSWORD, ip="10.0.2.1"))
    # Others are not affected.
    assert login("bob", PASSWORD, ip="10.0.2.2").status_code == 302


def test_an_address_is_locked_after_the_limit_whatever_the_account() -> None:
    make_user("member", username="carol")
    for attempt in range(LIMIT - 1):
        assert login(f"guess{attempt}", "wrong", ip="10.9.9.9").status_code == 200
    assert_locked_out(login("guess-last", "wrong", ip="10.9.9.9"))
    assert_locked_out(login("carol", PASSWORD, ip="10.9.9.9"))
    assert login("carol", PASSWORD, ip="10.9.9.10").status_code == 302


def test_a_success_in_between_does_not_reset_the_count() -> None:
    make_user("member", username="victim")
    make_user("member", username="attacker")
    for _ in range(LIMIT - 1):
        assert login("victim", "wrong", ip="10.3.3.3").status_code == 200
        # Logging in to one's own account from the same address wipes nothing.
        assert login("attacker", PASSWORD, ip="10.3.3.4").status_code == 302
    assert_locked_out(login("victim", "wrong", ip="10.3.3.5"))


def test_the_lock_ends_after_the_cool_off() -> None:
    make_user("member", username="dora")
    for _ in range(LIMIT):
        login("dora", "wrong", ip="10.4.4.4")
    assert_locked_out(login("dora", PASSWORD, ip="10.4.4.5"))
    # Move the attempts back past the cool-off instead of waiting for it.
    past = timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    assert AccessAttempt.objects.filter(username="dora").update(attempt_time=past)
    assert login("dora", PASSWORD, ip="10.4.4.5").status_code == 302


def test_the_lockout_is_visible_in_the_admin_and_deleting_it_unlocks() -> None:
    make_user("member", username="eve")
    for _ in range(LIMIT):
        login("eve", "wrong", ip="10.5.5.5")
    assert_locked_out(login("eve", PASSWORD, ip="10.5.5.6"))
    admin = Client()
    admin.force_login(make_user("staff", username="root"))
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    assert b"eve" in listing.content and b"10.5.5.5" in listing.content
    # One row per (account, address): the failures, and the refused try during the lockout.
    attempts = AccessAttempt.objects.filter(username="eve").order_by("attempt_time")
    assert [a.failures_since_start for a in attempts] == [LIMIT, 1]
    deleted = admin.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [a.pk for a in attempts], "post": "yes"},
    )
    assert deleted.status_code == 302 and not AccessAttempt.objects.filter(username="eve")
    assert login("eve", PASSWORD, ip="10.5.5.6").status_code == 302


def test_behind_proxies_the_client_is_taken_from_x_forwarded_for(settings: Any) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    make_user("member", username="fay")
    # Everyone arrives from the proxy; what the client itself put in the header is ignored.
    for attempt in range(LIMIT):
        login(f"guess{attempt}", "wrong", ip="127.0.0.1",
              HTTP_X_FORWARDED_FOR=f"1.1.1.{attempt}, 203.0.113.7")  # fmt: skip
    assert_locked_out(login("fay", PASSWORD, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.7"))
    # Another client behind the same proxy logs in.
    assert (
        login("fay", PASSWORD, ip="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code
        == 302
    )


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "203.0.113.7", "127.0.0.1"),  # no proxy trusted: the header is the client's word
        (1, "", "127.0.0.1"),  # not through the proxy
        (1, "203.0.113.7", "203.0.113.7"),
        (1, "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        (2, "6.6.6.6, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        (1, "2001:db8::1", "2001:db8::1"),
        (1, "not-an-address", "127.0.0.1"),
        (3, "203.0.113.7, 10.0.0.2", "127.0.0.1"),  # fewer hops than proxies
    ],
)
def test_client_ip(settings: Any, hops: int, forwarded: str, expected: str) -> None:
    settings.TRUSTED_PROXY_COUNT = hops
    request = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_pages_carry_the_content_security_policy() -> None:
    expected = {
        "default-src": "'self'",
        "script-src": "'self'",
        # plotly's bundled map stylesheet, by hash (see settings and tests/e2e/test_csp.py)
        "style-src": "'self' 'sha256-ji27qzEtxXZW+7dun6UwjHXJ18e6WAin1VvNtkzIE/o='",
        "img-src": "'self' blob:",
        "font-src": "'self'",
        "connect-src": "'self'",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }
    anonymous = Client()
    assert policy(anonymous.get(reverse("login"))) == expected
    member = Client()
    member.force_login(make_user("member", username="gil"))
    assert policy(member.get("/")) == expected
    # The lockout page too.
    for _ in range(LIMIT):
        response = login("gil", "wrong", ip="10.6.6.6")
    assert response.status_code == 429
    assert policy(response) == expected


def policy(response: Any) -> dict[str, str]:
    parts = (p.strip().split(None, 1) for p in response["Content-Security-Policy"].split(";"))
    return {name: value for name, value in parts}
