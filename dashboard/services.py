from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import F
from django.utils import timezone

from core.services import audit_record
from dashboard.models import MAX_COMPARE, ShareLink
from evals.models import Evaluation
from jobs.models import Job

# --- Dashboard: cached run diagnoses and share links --------------------------------------------


def run_diagnoses_save(*, diagnoses: list[Any]) -> None:
    """Store (or replace) the diagnoses of finished runs in one statement."""
    from dashboard.models import RunDiagnosis

    RunDiagnosis.objects.bulk_create(
        diagnoses,
        update_conflicts=True,
        unique_fields=["job"],
        update_fields=["fingerprint", "diagnosis", "computed_at"],
    )


class ShareLinkError(ValueError):
    """A share link that cannot be made; the message is shown to the user as it is."""


def share_link_create(
    *,
    user: AbstractBaseUser,
    job_ids: Sequence[Any] = (),
    evaluation_id: int | None = None,
    include_outputs: bool = False,
    label: str = "",
    expires_at: datetime | None = None,
) -> tuple[ShareLink, str]:
    """A new share link to one run (one id), a comparison (2–20 distinct ids, in page order)
    or an evaluation (``evaluation_id``; its prompts and outputs only with ``include_outputs``).

    Every rule of a share link is checked here (the forms only map ``ShareLinkError``). Returns
    the link and its token: the plaintext exists only in this return value (the database keeps
    its SHA-256), so the caller shows it once."""
    if evaluation_id is not None:
        if job_ids:
            raise ShareLinkError("A share link is to runs or to an evaluation, not both.")
        evaluation = Evaluation.objects.filter(pk=evaluation_id).first()
        if evaluation is None:
            raise ShareLinkError("That evaluation does not exist.")
        return share_link_issue(
            user=user,
            kind=ShareLink.Kind.EVALUATION,
            label=label.strip() or evaluation.name,
            expires_at=expires_at,
            detail={"evaluation": evaluation.pk, "outputs": include_outputs},
            evaluation=evaluation,
            include_outputs=include_outputs,
        )
    ids = [str(job_id) for job_id in job_ids]
    if not 1 <= len(ids) <= MAX_COMPARE or len(set(ids)) != len(ids):
        raise ShareLinkError(f"Share a run, or a comparison of 2 to {MAX_COMPARE} different runs.")
    names = {str(pk): name for pk, name in Job.objects.filter(pk__in=ids).values_list("pk", "name")}
    if len(names) != len(ids):
        raise ShareLinkError("Some of these runs do not exist (any more).")
    if not label.strip():
        label = (
            names[ids[0]] or "Untitled run" if len(ids) == 1 else f"Comparison of {len(ids)} runs"
        )
    return share_link_issue(
        user=user,
        kind=ShareLink.Kind.RUN if len(ids) == 1 else ShareLink.Kind.COMPARISON,
        label=label.strip(),
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
    token = ShareLink.new_token()
    link = ShareLink.objects.create(
        token_hash=ShareLink.hash_of(token),
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


def run_list_columns_set(*, user: AbstractBaseUser, shown: Sequence[str]) -> list[str]:
    """Remember which optional runs-list columns ``user`` shows (unknown keys are ignored);
    the hidden ones, sorted."""
    from dashboard.columns import hidden_from_shown
    from dashboard.models import RunListPreference

    hidden = hidden_from_shown(list(shown))
    RunListPreference.objects.update_or_create(user=user, defaults={"hidden_columns": hidden})
    return hidden
