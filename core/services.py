from __future__ import annotations

import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core import leases, queue, roles
from core.models import ApiToken, AuditEntry, Heartbeat, TaskProbe
from core.permissions import can_act, can_read, is_admin

log = logging.getLogger(__name__)


def roles_sync() -> bool:
    """Create the role groups and give each exactly its permissions (admin gets all).

    Returns False, changing nothing, while the database is at a layout older than this code
    (a partial ``migrate``, or one run backwards): the roles' permissions do not exist there and
    the next full ``migrate`` syncs them."""
    wanted = {dotted for dotted_perms in roles.ROLE_PERMISSIONS.values() for dotted in dotted_perms}
    found = {
        f"{app_label}.{codename}"
        for app_label, codename in Permission.objects.values_list(
            "content_type__app_label", "codename"
        )
        if f"{app_label}.{codename}" in wanted
    }
    if found != wanted:
        return False
    for role in roles.ALL_ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        if role == roles.ADMIN:
            group.permissions.set(Permission.objects.all())
            continue
        perms = []
        for dotted in roles.ROLE_PERMISSIONS[role]:
            app_label, codename = dotted.split(".")
            perms.append(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        group.permissions.set(perms)
    return True


def heartbeat_record(*, name: str, detail: str = "") -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"last_seen": timezone.now(), "detail": detail[:200]}
    )
    return heartbeat


def work_reap() -> list[leases.Requeued]:
    """Send again the validations, launches, imports and evaluations whose worker died or
    whose lease expired (``core.leases``)."""

    def send(task: str, args: Any) -> None:
        queue.enqueue(task, *args)

    requeued = leases.work_reap(send=send)
    for item in requeued:
        log.warning("re-sent %s %s (%s)", item.kind, item.pk, item.reason)
    return requeued


def probe_request(*, user: User | AnonymousUser | None) -> TaskProbe:
    probe = TaskProbe.objects.create(
        requested_by=user if user is not None and user.is_authenticated else None
    )
    queue.enqueue("core.tasks.probe_complete", probe.pk)
    return probe


def probe_complete(*, probe_id: int, worker: str) -> bool:
    """Mark a probe done; a redelivered task finds it done already and changes nothing."""
    updated = TaskProbe.objects.filter(pk=probe_id, completed_at__isnull=True).update(
        completed_at=timezone.now(), worker=worker[:200]
    )
    return bool(updated)


def admin_bootstrap(
    *, username: str | None, password: str | None, password_file: Path
) -> tuple[str, str | None] | None:
    """Create the first admin when there is no user at all.

    Returns (username, generated password or None) when an account was created, else None.
    A generated password is written to ``password_file`` with mode 600 so it survives the
    one-time console message.
    """
    User = get_user_model()
    if User.objects.exists():
        return None
    username = username or "admin"
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(18)
    with transaction.atomic():
        user = User.objects.create_superuser(username=username, email="", password=password)
        user.groups.add(Group.objects.get(name=roles.ADMIN))
    if generated:
        password_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"username: {username}\npassword: {generated}\n")
        password_file.chmod(0o600)
    return username, generated


def audit_record(
    *,
    actor: User | AnonymousUser | None,
    action: str,
    obj: object,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(getattr(obj, "pk", "")),
        object_repr=str(obj)[:200],
        detail=detail or {},
    )


# --- API tokens --------------------------------------------------------------------------------

API_TOKEN_PREFIX = "tb_"  # noqa: S105 - a public marker that says what the string is
# last_used_at is written at most this often per token (a busy client must not turn every
# request into a write).
API_TOKEN_TOUCH_SECONDS = 60


class ApiTokenError(Exception):
    """A user-facing reason why a token cannot be made or used."""


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_token_create(
    *, user: Any, name: str, scope: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """A new token for ``user`` and its secret, which is not kept: shown once. A token may do
    no more than its owner's role: read-write needs the member or admin role, read-only any
    role."""
    if scope not in ApiToken.Scope.values:
        raise ApiTokenError(f"“{scope}” is not a token scope.")
    if not can_read(user):
        raise ApiTokenError("Your account has no role: it cannot have API tokens.")
    if scope == ApiToken.Scope.WRITE and not can_act(user):
        raise ApiTokenError("A viewer's tokens are read-only.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ApiTokenError("The expiry date must be in the future.")
    name = name.strip()
    if not name:
        raise ApiTokenError("Name the token (where it is used).")
    raw = API_TOKEN_PREFIX + secrets.token_urlsafe(30)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name[:100], prefix=raw[:10], key_hash=_token_hash(raw), scope=scope,
            expires_at=expires_at,
        )  # fmt: skip
        audit_record(actor=user, action="api_token_created", obj=token, detail={"scope": scope})
    return token, raw


def api_token_revoke(*, token: ApiToken, actor: Any) -> ApiToken:
    """Revoke ``token`` (its owner, or an admin); revoking twice changes nothing."""
    if actor.pk != token.user_id and not is_admin(actor):
        raise ApiTokenError("Only its owner or an admin can revoke a token.")
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        ):
            audit_record(actor=actor, action="api_token_revoked", obj=token)
    token.refresh_from_db()
    return token


@dataclass(frozen=True)
class ApiCaller:
    """Who calls the API with a token, and what the token lets them do now."""

    token: ApiToken
    user: User
    can_write: bool


def api_token_authenticate(*, raw: str) -> ApiCaller | None:
    """The caller a presented token stands for, or None (unknown, revoked, expired, its owner
    inactive or left without a role). Its scope is capped by the owner's role at this moment."""
    if not raw.startswith(API_TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=_token_hash(raw), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if token is None or (token.expires_at is not None and token.expires_at <= now):
        return None
    user = token.user
    if not user.is_active or not can_read(user):
        return None
    stale = now - timedelta(seconds=API_TOKEN_TOUCH_SECONDS)
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
    ).update(last_used_at=now)
    return ApiCaller(
        token=token, user=user, can_write=token.scope == ApiToken.Scope.WRITE and can_act(user)
    )
