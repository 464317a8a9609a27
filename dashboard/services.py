from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from dashboard import roles
from dashboard.models import AuditEntry, Heartbeat, ShareLink, TaskProbe


def roles_sync() -> None:
    """Create the role groups and give each exactly its permissions (admin gets all)."""
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


def heartbeat_record(*, name: str, detail: str = "") -> Heartbeat:
    heartbeat, _ = Heartbeat.objects.update_or_create(
        name=name, defaults={"last_seen": timezone.now(), "detail": detail[:200]}
    )
    return heartbeat


def probe_request(*, user: AbstractBaseUser | None) -> TaskProbe:
    from dashboard.tasks import probe_complete

    probe = TaskProbe.objects.create(requested_by=user)
    transaction.on_commit(lambda: probe_complete.delay(probe.pk))
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
    actor: AbstractBaseUser | None,
    action: str,
    obj: object,
    detail: dict | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        object_type=type(obj).__name__.lower(),
        object_id=str(getattr(obj, "pk", "")),
        object_repr=str(obj)[:200],
        detail=detail or {},
    )


# --- Dashboard: cached run curves and share links --------------------------------------------


def run_curves_save(*, curves: list[Any]) -> None:
    """Store (or replace) the reduced curves of finished runs in one statement."""
    from dashboard.models import RunCurve

    RunCurve.objects.bulk_create(
        curves,
        update_conflicts=True,
        unique_fields=["job", "level"],
        update_fields=["fingerprint", "row_count", "points", "diagnosis", "computed_at"],
    )


def share_link_create(
    *,
    user: AbstractBaseUser,
    job_ids: list[Any],
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[ShareLink, str]:
    """A new share link to one run (one id) or a comparison (2–20 ids, in page order).

    Returns the link and its token: the plaintext exists only in this return value (the
    database keeps its SHA-256), so the caller shows it once."""
    from dashboard import share

    ids = [str(job_id) for job_id in job_ids]
    if not 1 <= len(ids) <= share.MAX_RUNS or len(set(ids)) != len(ids):
        raise ValueError(f"a share link names 1 to {share.MAX_RUNS} different runs")
    return share_link_issue(
        user=user,
        kind=ShareLink.Kind.RUN if len(ids) == 1 else ShareLink.Kind.COMPARISON,
        label=label,
        expires_at=expires_at,
        detail={"runs": ids},
        job_id=ids[0] if len(ids) == 1 else None,
        job_ids=ids,
    )


def share_link_issue(
    *,
    user: AbstractBaseUser,
    kind: str,
    label: str,
    expires_at: datetime | None,
    detail: dict[str, Any],
    **target: Any,
) -> tuple[ShareLink, str]:
    """Store a new link of ``kind`` to ``target`` (its ShareLink fields) and audit it. The
    plaintext token exists only in the return value: the database keeps its SHA-256."""
    from dashboard import share

    token = share.new_token()
    link = ShareLink.objects.create(
        token_hash=share.token_hash(token),
        kind=kind,
        label=label[:200],
        created_by=user,
        expires_at=expires_at,
        **target,
    )
    audit_record(
        actor=user,
        action="share_link_created",
        obj=link,
        detail={
            "kind": kind,
            **detail,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return link, token


def share_link_revoke(*, link: ShareLink, user: AbstractBaseUser | None) -> ShareLink:
    """Revoke a link (idempotent: a revoked link keeps its first revocation time)."""
    now = timezone.now()
    updated = ShareLink.objects.filter(pk=link.pk, revoked_at__isnull=True).update(revoked_at=now)
    if updated:
        link.revoked_at = now
        audit_record(actor=user, action="share_link_revoked", obj=link, detail={"kind": link.kind})
    else:
        link.refresh_from_db(fields=["revoked_at"])
    return link


def share_link_freeze(*, link: ShareLink, snapshot: dict[str, Any]) -> ShareLink:
    """Keep the finished runs' page data: the link shows this from now on."""
    now = timezone.now()
    ShareLink.objects.filter(pk=link.pk, snapshot__isnull=True).update(
        snapshot=snapshot, snapshot_at=now
    )
    link.snapshot, link.snapshot_at = snapshot, now
    return link


def share_link_record_view(*, link: ShareLink) -> None:
    ShareLink.objects.filter(pk=link.pk).update(
        view_count=F("view_count") + 1, last_viewed_at=timezone.now()
    )
