"""Notifications when a job reaches a terminal state, a guardrail fires, or a sweep ends: an
email (Django's email backend) and/or a POST of ``{"text": …}`` to a Slack-compatible incoming
webhook.

Exactly once per terminal state: ``notifications_for_terminal`` runs inside the sync's
transaction and claims the state with one conditional UPDATE of ``Job.notified_status``, so
however many syncs (polling, webhooks, "Sync now") see the state, one of them creates the
``Notification`` rows. Each row is then sent by a retrying Celery task, outside any
transaction; a claim on the row keeps a redelivered task from sending it twice.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

import httpx
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from core import outbound, queue
from core.services import audit_record
from jobs import guardrail_rules
from jobs.models import Job, Notification, NotificationSetting, ProviderConnection, Sweep

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 6
STALE_CLAIM = timedelta(minutes=5)
SLACK_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
STATUS_WORDS = {"succeeded": "succeeded", "failed": "failed", "cancelled": "was cancelled"}
# A guardrail's firing is announced like a status: "gr:<kind>" (jobs.guardrails).
GUARDRAIL_PREFIX = "gr:"
STATUS_WORDS |= {
    f"{GUARDRAIL_PREFIX}{kind}": f"tripped its {label.lower()} guardrail"
    for kind, label in guardrail_rules.LABELS.items()
}
# A sweep's end is announced as "sweep:<status>" (jobs.sweeps).
SWEEP_PREFIX = "sweep:"
STATUS_WORDS |= {
    f"{SWEEP_PREFIX}{Sweep.Status.FINISHED}": "finished",
    f"{SWEEP_PREFIX}{Sweep.Status.STOPPED}": "was stopped by its budget",
    f"{SWEEP_PREFIX}{Sweep.Status.CANCELLED}": "was cancelled",
}


class NotificationFailed(Exception):
    """Sending failed in a way a later attempt can fix (network, SMTP, 5xx/429)."""


class _Refused(Exception):
    """The receiver refused the message for good (a 4xx other than 429)."""


def base_url() -> str:
    return str(getattr(settings, "TUNEBOARD_BASE_URL", "http://localhost:8000")).rstrip("/")


def job_url(job: Job) -> str:
    return base_url() + reverse("jobs:detail", kwargs={"pk": job.pk})


def sweep_url(sweep: Sweep) -> str:
    return base_url() + reverse("sweep_detail", kwargs={"pk": sweep.pk})


# --- who is told ---------------------------------------------------------------------------------


def recipients(job: Job) -> list[tuple[str, str]]:
    return recipients_for(creator=job.created_by, connection=job.connection)


def recipients_for(
    *, creator: AbstractBaseUser | None, connection: ProviderConnection
) -> list[tuple[str, str]]:
    """(channel, target) pairs: the creator's opted-in email and Slack URL, then the
    connection's addresses and Slack URL; duplicates removed."""
    targets: list[tuple[str, str]] = []
    if creator is not None and creator.is_active:
        setting = NotificationSetting.objects.filter(user=creator).first()
        if setting is not None:
            email = getattr(creator, "email", "")
            if setting.email_enabled and email:
                targets.append((Notification.Channel.EMAIL, email))
            if setting.slack_webhook_url:
                targets.append((Notification.Channel.SLACK, setting.slack_webhook_url))
    for address in connection.notify_email_list:
        targets.append((Notification.Channel.EMAIL, address))
    if connection.slack_webhook_url:
        targets.append((Notification.Channel.SLACK, connection.slack_webhook_url))
    unique: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for channel, target in targets:
        key = (channel, target.lower() if channel == Notification.Channel.EMAIL else target)
        if key not in seen:
            seen.add(key)
            unique.append((channel, target))
    return unique


def notifications_for_terminal(*, job: Job) -> list[int]:
    """Called by the sync, in its transaction, after storing a terminal status. Returns the
    ids of the notifications created (none when this state was already announced)."""
    status = job.status
    if status not in Job.PROVIDER_TERMINAL:
        return []
    claimed = (
        Job.objects.filter(pk=job.pk).exclude(notified_status=status).update(notified_status=status)
    )
    if not claimed:
        return []
    job.notified_status = status
    fresh = Job.objects.select_related("connection", "created_by").get(pk=job.pk)
    return _announce(recipients(fresh), status, job=fresh)


def notifications_for_guardrail(*, job: Job, kind: str) -> list[int]:
    """Called once per firing (``GuardrailFiring`` is unique per guardrail), in its
    transaction: the same recipients as a finished job."""
    fresh = Job.objects.select_related("connection", "created_by").get(pk=job.pk)
    return _announce(recipients(fresh), f"{GUARDRAIL_PREFIX}{kind}", job=fresh)


def notifications_for_sweep(*, sweep: Sweep) -> list[int]:
    """Called once when a sweep ends (finished, stopped by its budget, cancelled), in the
    transaction that ends it under the sweep's row lock: its creator's and its connection's
    recipients are told once."""
    targets = recipients_for(creator=sweep.created_by, connection=sweep.connection)
    return _announce(targets, f"{SWEEP_PREFIX}{sweep.status}", sweep=sweep)


def _announce(
    targets: list[tuple[str, str]],
    status: str,
    *,
    job: Job | None = None,
    sweep: Sweep | None = None,
) -> list[int]:
    """One notification per target about ``status`` of the job or sweep (none made twice),
    each sent by a task once the caller's transaction commits. Returns the ones made now."""
    created = []
    for channel, target in targets:
        notification, made = Notification.objects.get_or_create(
            job=job, sweep=sweep, job_status=status, channel=channel, target=target
        )
        if made:
            created.append(notification.pk)
    for pk in created:
        # robust: a broker hiccup must not undo the sync; the admin can resend later.
        queue.enqueue("jobs.tasks.notification_send_task", pk, robust=True)
    return created


# --- sending -------------------------------------------------------------------------------------


def _facts(job: Job) -> list[str]:
    lines = [f"Connection: {job.connection.name}", f"Base model: {job.model or job.base_model}"]
    if job.fine_tuned_model:
        lines.append(f"Fine-tuned model: {job.fine_tuned_model}")
    if job.trained_tokens is not None:
        lines.append(f"Trained tokens: {job.trained_tokens:,}")
    if job.final_train_loss is not None:
        lines.append(f"Final training loss: {job.final_train_loss:.4f}")
    if job.best_full_valid_loss is not None:
        lines.append(
            f"Best full validation loss: {job.best_full_valid_loss:.4f} "
            f"(step {job.best_full_valid_step})"
        )
    if job.error and isinstance(job.error, dict):
        lines.append(f"Error: {job.error.get('message') or job.error.get('code') or 'unknown'}")
    return lines


def _one_line(text: str, limit: int = 150) -> str:
    return " ".join(str(text).split())[:limit]


def _sweep_facts(sweep: Sweep) -> list[str]:
    runs = list(sweep.runs.select_related("job").order_by("index"))
    launched = [run for run in runs if run.job is not None]
    done: dict[str, int] = {}
    for run in launched:
        assert run.job is not None
        done[run.job.status] = done.get(run.job.status, 0) + 1
    outcome = ", ".join(f"{count} {status}" for status, count in sorted(done.items()))
    spent = sum((run.spend for run in launched), Decimal(0))
    lines = [
        f"Connection: {sweep.connection.name}",
        f"Runs: {len(launched)} of {len(runs)} launched" + (f" ({outcome})" if outcome else ""),
        f"Spent: ${spent:,.2f} of the ${sweep.budget_usd:,.2f} budget",
    ]
    scored = [
        run.job
        for run in launched
        if run.job is not None and run.job.best_full_valid_loss is not None
    ]
    if scored:
        best = min(scored, key=lambda job: job.best_full_valid_loss or 0.0)
        lines.append(
            f"Best run: {best.display_name} (full validation loss "
            f"{best.best_full_valid_loss:.4f} at step {best.best_full_valid_step})"
        )
    if sweep.status_message:
        lines.append(sweep.status_message)
    return lines


def _sweep_email(notification: Notification, sweep: Sweep) -> EmailMessage:
    word = STATUS_WORDS.get(notification.job_status, notification.job_status)
    body = "\n".join(
        [
            f"The sweep “{sweep.name}” {word}.",
            "",
            *_sweep_facts(sweep),
            "",
            f"Open the sweep: {sweep_url(sweep)}",
            "",
            "You receive this because of your Tuneboard notification settings or the "
            "connection's notification addresses.",
        ]
    )
    subject = _one_line(f"[Tuneboard] Sweep {sweep.name} {word}")
    return EmailMessage(subject=subject, body=body, to=[notification.target])


def email_message(notification: Notification) -> EmailMessage:
    if notification.sweep is not None:
        return _sweep_email(notification, notification.sweep)
    job = notification.job
    assert job is not None
    word = STATUS_WORDS.get(notification.job_status, notification.job_status)
    subject = _one_line(f"[Tuneboard] {job.display_name} {word}")
    body = "\n".join(
        [
            f"The fine-tuning job “{job.display_name}” {word}.",
            "",
            *_facts(job),
            "",
            f"Open the run: {job_url(job)}",
            "",
            "You receive this because of your Tuneboard notification settings or the "
            "connection's notification addresses.",
        ]
    )
    return EmailMessage(subject=subject, body=body, to=[notification.target])


def slack_escape(text: str) -> str:
    """Slack's mrkdwn control characters; user content must not form links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(notification: Notification) -> str:
    word = STATUS_WORDS.get(notification.job_status, notification.job_status)
    sweep = notification.sweep
    if sweep is not None:
        name = slack_escape(_one_line(sweep.name, 200))
        facts = "\n".join(slack_escape(line) for line in _sweep_facts(sweep))
        return f"Sweep <{sweep_url(sweep)}|{name}> {word}.\n{facts}"
    job = notification.job
    assert job is not None
    name = slack_escape(_one_line(job.display_name, 200))
    facts = "\n".join(slack_escape(line) for line in _facts(job))
    return f"Fine-tuning job <{job_url(job)}|{name}> {word}.\n{facts}"


def _post_slack(notification: Notification) -> None:
    # Refused targets (loopback, private, …: core.outbound) raise UnsafeURL: failed for good.
    response = outbound.post(
        notification.target, json={"text": slack_text(notification)}, timeout=SLACK_TIMEOUT
    )
    if response.status_code == 429 or response.status_code >= 500:
        raise httpx.HTTPStatusError(
            f"HTTP {response.status_code}", request=response.request, response=response
        )
    if not response.is_success:
        raise _Refused(f"HTTP {response.status_code}: {response.text[:200]}")


def notification_send(*, notification_id: int) -> bool:
    """Send one notification unless it was sent or another attempt holds it. True when sent
    now. Raises ``NotificationFailed`` when a later attempt may succeed."""
    claim = uuid.uuid4()
    now = timezone.now()
    claimed = (
        Notification.objects.filter(pk=notification_id, state=Notification.State.PENDING)
        .filter(Q(claim__isnull=True) | Q(claimed_at__lt=now - STALE_CLAIM))
        .update(claim=claim, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return False
    notification = Notification.objects.select_related(
        "job", "job__connection", "sweep", "sweep__connection"
    ).get(pk=notification_id)
    mine = Notification.objects.filter(pk=notification_id, claim=claim)
    try:
        if notification.channel == Notification.Channel.EMAIL:
            email_message(notification).send()
        else:
            _post_slack(notification)
    except (OSError, httpx.HTTPError) as exc:
        final = notification.attempts >= MAX_ATTEMPTS
        mine.update(
            claim=None,
            state=Notification.State.FAILED if final else Notification.State.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        if final:
            return False
        raise NotificationFailed(str(exc)) from exc
    except Exception as exc:  # refused by the receiver, or a message it cannot take
        log.warning("notification %s refused: %s", notification_id, exc)
        mine.update(
            claim=None,
            state=Notification.State.FAILED,
            last_error=f"{type(exc).__name__}: {exc}"[:1000],
        )
        return False
    mine.update(claim=None, state=Notification.State.SENT, sent_at=timezone.now(), last_error="")
    return True


def notification_resend(*, notification: Notification, actor: AbstractBaseUser | None) -> None:
    """Admin action: try a failed notification again."""
    with transaction.atomic():
        Notification.objects.filter(pk=notification.pk).exclude(
            state=Notification.State.SENT
        ).update(state=Notification.State.PENDING, claim=None, attempts=0)
        audit_record(actor=actor, action="notification_resent", obj=notification)
        queue.enqueue("jobs.tasks.notification_send_task", notification.pk, robust=True)


# --- settings ------------------------------------------------------------------------------------


def notification_setting_get(*, user: AbstractBaseUser) -> NotificationSetting:
    return NotificationSetting.objects.filter(user=user).first() or NotificationSetting(user=user)


def notification_setting_save(
    *, user: AbstractBaseUser, email: str, email_enabled: bool, slack_webhook_url: str
) -> NotificationSetting:
    with transaction.atomic():
        if user.email != email:
            user.email = email
            user.save(update_fields=["email"])
        setting, _ = NotificationSetting.objects.update_or_create(
            user=user,
            defaults={"email_enabled": email_enabled, "slack_webhook_url": slack_webhook_url},
        )
        audit_record(
            actor=user,
            action="notifications_updated",
            obj=setting,
            detail={"email": email_enabled, "slack": bool(slack_webhook_url)},
        )
    return setting
