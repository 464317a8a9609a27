"""Personal API tokens (issue 17, deliverable 1): random, shown once, stored hashed, named,
with an optional expiry, revocable, their last use recorded, read-only or read-write and never
more than their owner's role; admins see and revoke them; creation and revocation are audited."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core import roles
from core.models import ApiToken, AuditEntry
from core.services import ApiTokenError, api_token_authenticate, api_token_create
from tests.permissions import LOGIN, assert_matrix, client_for, make_user

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r'id="new-token"[^>]*value="(tb_[A-Za-z0-9_-]+)"')


def created_token(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "the new token is shown"
    return match.group(1)


def test_a_member_makes_a_token_that_is_shown_once_and_stored_hashed() -> None:
    member = client_for("member")
    page = member.post("/accounts/tokens/", {"name": "GPU box", "scope": "write", "expires": "30"})
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    raw = created_token(page.content.decode())
    token = ApiToken.objects.get()
    assert (token.name, token.scope, token.prefix) == ("GPU box", "write", raw[:10])
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiToken.objects.values().get())  # only its hash is kept
    assert timedelta(days=29) < token.expires_at - timezone.now() <= timedelta(days=30)
    again = member.get("/accounts/tokens/").content.decode()
    assert raw not in again and "GPU box" in again and f"{raw[:10]}…" in again
    entry = AuditEntry.objects.get(action="api_token_created")
    assert entry.actor.username == "member-user" and entry.detail == {"scope": "write"}
    assert raw not in str(entry.detail) and raw not in entry.object_repr


def test_a_token_never_does_more_than_its_owners_role() -> None:
    viewer = client_for("viewer")
    refused = viewer.post("/accounts/tokens/", {"name": "x", "scope": "write"})
    assert refused.status_code == 400 and not ApiToken.objects.exists()
    assert "Select a valid choice" in refused.content.decode()
    raw = created_token(
        viewer.post("/accounts/tokens/", {"name": "reader", "scope": "read"}).content.decode()
    )
    caller = api_token_authenticate(raw=raw)
    assert caller is not None and caller.user.username == "viewer-user" and not caller.can_write
    member = make_user("member", username="demoted")
    token, secret = api_token_create(user=member, name="w", scope="write")
    assert api_token_authenticate(raw=secret).can_write  # type: ignore[union-attr]
    # Demoted to viewer: the write token now only reads; without a role it is refused.
    member.groups.set([Group.objects.get(name=roles.VIEWER)])
    member = type(member).objects.get(pk=member.pk)  # permissions are cached per object
    assert api_token_authenticate(raw=secret).can_write is False  # type: ignore[union-attr]
    member.groups.clear()
    assert api_token_authenticate(raw=secret) is None
    nobody = make_user("norole")
    with pytest.raises(ApiTokenError, match="no role"):
        api_token_create(user=nobody, name="n", scope="read")
    assert token.scope == "write"


def test_revoked_expired_unknown_and_malformed_tokens_are_refused(settings: Any) -> None:
    user = make_user("member", username="owner")
    token, raw = api_token_create(user=user, name="t", scope="read")
    assert api_token_authenticate(raw=raw) is not None
    first_use = ApiToken.objects.get(pk=token.pk).last_used_at
    assert first_use is not None
    api_token_authenticate(raw=raw)  # used again within a minute: not written again
    assert ApiToken.objects.get(pk=token.pk).last_used_at == first_use
    for bad in ("", "tb_", raw + "x", raw.upper(), "Bearer " + raw, "x" * 500):
        assert api_token_authenticate(raw=bad) is None, bad
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api_token_authenticate(raw=raw) is None
    _, other = api_token_create(user=user, name="u", scope="read")
    client = client_for("member")
    client.force_login(user)
    mine = ApiToken.objects.get(name="u")
    assert client.post(f"/accounts/tokens/{mine.pk}/revoke/").status_code == 302
    assert api_token_authenticate(raw=other) is None
    assert client.post(f"/accounts/tokens/{mine.pk}/revoke/").status_code == 302  # twice: same
    assert AuditEntry.objects.filter(action="api_token_revoked").count() == 1
    with pytest.raises(ApiTokenError, match="future"):
        api_token_create(user=user, name="v", scope="read", expires_at=timezone.now())


def test_someone_elses_token_cannot_be_revoked_from_the_page() -> None:
    owner = make_user("member", username="owner2")
    token, _ = api_token_create(user=owner, name="theirs", scope="read")
    assert client_for("member").post(f"/accounts/tokens/{token.pk}/revoke/").status_code == 404
    assert ApiToken.objects.get(pk=token.pk).revoked_at is None


def test_admins_see_and_revoke_tokens_but_never_their_secret() -> None:
    owner = make_user("member", username="owner3")
    token, raw = api_token_create(user=owner, name="box", scope="write")
    staff = client_for("staff")
    listing = staff.get("/admin/core/apitoken/").content.decode()
    assert "box" in listing and token.prefix in listing
    assert raw not in listing and token.key_hash not in listing
    detail = staff.get(f"/admin/core/apitoken/{token.pk}/change/").content.decode()
    assert token.key_hash not in detail and raw not in detail
    response = staff.post(
        "/admin/core/apitoken/", {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
    assert api_token_authenticate(raw=raw) is None


def test_permission_matrix_of_the_token_pages() -> None:
    assert_matrix(
        "/accounts/tokens/",
        {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200},
    )
    assert_matrix(
        "/accounts/tokens/1/revoke/",
        {"anonymous": LOGIN, "norole": 403, "viewer": 404, "member": 404, "staff": 404},
        method="post",
    )
    assert client_for("member").get("/accounts/tokens/1/revoke/").status_code == 405
