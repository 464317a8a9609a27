"""Writes for provider connections and jobs. Provider calls happen outside transactions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import queue
from core.services import audit_record
from datasets.models import Dataset
from jobs.connections import provider_for_connection
from jobs.locks import AdvisoryLock
from jobs.models import Job, ProviderConnection, ProviderFile
from jobs.providers import (
    BadRequestError,
    JobSpec,
    NotFoundError,
    ProviderError,
    TransientProviderError,
)
from jobs.sync import job_sync

log = logging.getLogger(__name__)
METADATA_KEY = "tuneboard_job_id"
LAUNCH_LOCK = "jobs.launch"
MAX_LAUNCH_ATTEMPTS = 5
HYPERPARAMETER_RANGES = {
    "n_epochs": (1, 50),
    "batch_size": (1, 256),
}


class JobError(Exception):
    """A user-facing reason why an action cannot be done."""


# --- Connections ------------------------------------------------------------------------------


def connection_save(
    *,
    connection: ProviderConnection | None = None,
    name: str,
    kind: str,
    base_url: str,
    api_key: str | None,
    organization: str = "",
    project: str = "",
    api_version: str = "",
    webhook_secret: str | None = None,
    enabled: bool = True,
    notify_emails: str | None = None,
    slack_webhook_url: str | None = None,
    actor: AbstractBaseUser | None = None,
) -> ProviderConnection:
    """Create or update a connection. ``api_key=None`` keeps the stored key (write-only field);
    ``None`` for the notification fields keeps them as they are."""
    connection = connection or ProviderConnection()
    creating = connection.pk is None
    connection.name = name
    connection.kind = kind
    connection.base_url = base_url.rstrip("/")
    connection.organization = organization
    connection.project = project
    connection.api_version = api_version
    connection.enabled = enabled
    if api_key is not None:
        connection.set_api_key(api_key)
    if webhook_secret is not None:
        connection.set_webhook_secret(webhook_secret)
    if notify_emails is not None:
        connection.notify_emails = notify_emails
    if slack_webhook_url is not None:
        connection.slack_webhook_url = slack_webhook_url
    connection.save()
    audit_record(
        actor=actor,
        action="connection_created" if creating else "connection_updated",
        obj=connection,
    )
    return connection


def connection_archive(
    *, connection: ProviderConnection, actor: AbstractBaseUser | None = None
) -> ProviderConnection:
    """Keep the connection's history read-only: remove its API key, stop polling its jobs.

    Jobs, events, checkpoints, metrics, datasets and share links stay as they are; controls
    that need the provider disappear (``selectors.connection_problem``), a running import
    stops at its next step, and webhooks are acknowledged without syncing."""
    now = timezone.now()
    with transaction.atomic():
        ProviderConnection.objects.filter(pk=connection.pk).update(
            archived_at=Coalesce(F("archived_at"), Value(now)),
            api_key_encrypted="",
            api_key_hint="",
            updated_at=now,
        )
        stopped = Job.objects.filter(connection=connection, next_poll_at__isnull=False).update(
            next_poll_at=None
        )
        audit_record(
            actor=actor,
            action="connection_archived",
            obj=connection,
            detail={"polls_stopped": stopped},
        )
    connection.refresh_from_db()
    return connection


def connection_ensure(*, name: str, kind: str, base_url: str, api_key: str) -> ProviderConnection:
    """Idempotent bootstrap (make run): create once, keep the URL and key in step afterwards."""
    connection = ProviderConnection.objects.filter(name=name).first()
    if connection is None:
        return connection_save(name=name, kind=kind, base_url=base_url, api_key=api_key)
    if connection.base_url != base_url.rstrip("/") or connection.get_api_key() != api_key:
        connection.base_url = base_url.rstrip("/")
        connection.set_api_key(api_key)
        connection.save()
    return connection


# --- Launch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LaunchRequest:
    connection: ProviderConnection
    base_model: str
    training_dataset: Dataset
    validation_dataset: Dataset | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] | None = None  # only explicit values; missing = "auto"
    suffix: str = ""
    seed: int | None = None
    integrations: list[dict[str, Any]] | None = None
    name: str = ""
    notes: str = ""
    tags: list[str] | None = None
    cloned_from: Job | None = None


def _check_dataset(dataset: Dataset | None, role: str) -> None:
    if dataset is not None and dataset.status != Dataset.Status.VALID:
        raise JobError(
            f"The {role} dataset “{dataset.name}” is not valid ({dataset.get_status_display()})."
        )


def job_launch(*, request: LaunchRequest, user: AbstractBaseUser | None) -> Job:
    if not request.connection.usable:
        raise JobError(
            f"The connection “{request.connection.name}” is disabled, archived or has no API key."
        )
    _check_dataset(request.training_dataset, "training")
    _check_dataset(request.validation_dataset, "validation")
    with transaction.atomic():
        job = Job.objects.create(
            connection=request.connection,
            name=request.name,
            notes=request.notes,
            tags=request.tags or [],
            created_by=user if user is not None and user.is_authenticated else None,
            base_model=request.base_model,
            method=request.method,
            requested_hyperparameters=request.hyperparameters or {},
            suffix=request.suffix,
            seed=request.seed,
            integrations=request.integrations or [],
            training_dataset=request.training_dataset,
            validation_dataset=request.validation_dataset,
            cloned_from=request.cloned_from,
        )
        audit_record(
            actor=user, action="job_launched", obj=job, detail={"base_model": request.base_model}
        )
        queue.enqueue("jobs.tasks.job_launch_task", str(job.pk))
    return job


def _provider_file(job: Job, dataset: Dataset) -> str:
    existing = ProviderFile.objects.filter(
        connection=job.connection, sha256=dataset.sha256, purpose="fine-tune"
    ).first()
    if existing:
        return existing.provider_file_id
    provider = provider_for_connection(job.connection)
    with dataset.file.open("rb") as stream:
        info = provider.upload_file(
            filename=dataset.download_name, stream=stream, size=dataset.size
        )
    info = provider.wait_for_file(info.id)
    if info.status == "error":
        raise BadRequestError(f"The provider could not process {dataset.name}.", status=400)
    try:
        ProviderFile.objects.create(
            connection=job.connection,
            sha256=dataset.sha256,
            purpose="fine-tune",
            provider_file_id=info.id,
            bytes=dataset.size,
        )
    except IntegrityError:
        # Another launch uploaded the same content meanwhile: use the recorded file.
        return ProviderFile.objects.get(
            connection=job.connection, sha256=dataset.sha256, purpose="fine-tune"
        ).provider_file_id
    return info.id


def _find_created(job: Job) -> Any:
    provider = provider_for_connection(job.connection)
    page = provider.list_jobs(metadata={METADATA_KEY: str(job.pk)}, limit=10)
    return page.data[0] if page.data else None


def job_launch_run(*, job_id: Any) -> Job:
    """Upload the datasets and create the provider job, exactly once whatever happens.

    A retried or duplicated task finds the job already created (our id is in its metadata)
    instead of paying for a second one; one running at the same time as another (a task
    delivered twice) finds the launch lock taken and leaves the launch to it."""
    with AdvisoryLock(LAUNCH_LOCK, job_id) as held:
        if not held:
            return Job.objects.get(pk=job_id)
        return _launch(job_id)


def _launch(job_id: Any) -> Job:
    claimed = Job.objects.filter(
        pk=job_id,
        status__in=[Job.Status.PENDING, Job.Status.LAUNCHING],
        provider_job_id__isnull=True,
    ).update(status=Job.Status.LAUNCHING)
    job = Job.objects.select_related("connection", "training_dataset", "validation_dataset").get(
        pk=job_id
    )
    if not claimed:
        return job
    provider = provider_for_connection(job.connection)
    try:
        info = _find_created(job)
        if info is None:
            training = _provider_file(job, job.training_dataset)
            validation = (
                _provider_file(job, job.validation_dataset) if job.validation_dataset else None
            )
            info = provider.create_job(
                JobSpec(
                    model=job.base_model,
                    training_file=training,
                    validation_file=validation,
                    method=job.method,
                    hyperparameters=job.requested_hyperparameters,
                    suffix=job.suffix or None,
                    seed=job.seed,
                    metadata={METADATA_KEY: str(job.pk)},
                    integrations=job.integrations or None,
                )
            )
    except TransientProviderError as exc:
        attempts = job.poll_failures + 1
        if attempts >= MAX_LAUNCH_ATTEMPTS:
            Job.objects.filter(pk=job.pk).update(
                status=Job.Status.LAUNCH_FAILED,
                launch_error=str(exc)[:1000],
                poll_failures=attempts,
            )
            return job
        Job.objects.filter(pk=job.pk).update(poll_failures=attempts, launch_error=str(exc)[:1000])
        raise
    except ProviderError as exc:
        Job.objects.filter(pk=job.pk).update(
            status=Job.Status.LAUNCH_FAILED, launch_error=str(exc)[:1000]
        )
        return job
    Job.objects.filter(pk=job.pk).update(
        provider_job_id=info.id,
        status=info.status,
        model=info.model or job.base_model,
        training_file_id=info.training_file or "",
        validation_file_id=info.validation_file or "",
        seed=info.seed if info.seed is not None else job.seed,
        provider_created_at=timezone.now(),
        next_poll_at=timezone.now(),
        poll_failures=0,
        launch_error="",
    )
    job.refresh_from_db()
    return job


# --- Controls ---------------------------------------------------------------------------------


def _control(job: Job, user: AbstractBaseUser | None, action: str, call: str) -> Job:
    if not job.provider_job_id:
        raise JobError("This job has not reached the provider yet.")
    if not job.connection.usable:
        raise JobError("The provider connection is archived or disabled.")
    provider = provider_for_connection(job.connection)
    try:
        info = getattr(provider, call)(job.provider_job_id)
    except ProviderError as exc:
        raise JobError(f"The provider refused to {action} this job: {exc}") from exc
    audit_record(actor=user, action=f"job_{action}", obj=job)
    # The answer carries the new status; store it even if a running sync holds the job lock.
    Job.objects.filter(pk=job.pk).update(status=info.status)
    job_sync_now(job=job, user=None, audit=False)
    job.refresh_from_db()
    return job


def job_cancel(*, job: Job, user: AbstractBaseUser | None) -> Job:
    return _control(job, user, "cancel", "cancel_job")


def job_pause(*, job: Job, user: AbstractBaseUser | None) -> Job:
    return _control(job, user, "pause", "pause_job")


def job_resume(*, job: Job, user: AbstractBaseUser | None) -> Job:
    return _control(job, user, "resume", "resume_job")


def job_sync_now(*, job: Job, user: AbstractBaseUser | None, audit: bool = True) -> Any:
    if audit:
        audit_record(actor=user, action="job_sync", obj=job)
    Job.objects.filter(pk=job.pk).update(next_poll_at=timezone.now())
    return job_sync(job_id=job.pk)


def job_delete_model(*, job: Job, user: AbstractBaseUser | None) -> Job:
    if not job.fine_tuned_model:
        raise JobError("This job has no fine-tuned model.")
    provider = provider_for_connection(job.connection)
    try:
        provider.delete_model(job.fine_tuned_model)
    except NotFoundError:
        pass  # already gone at the provider: the outcome the user asked for
    except ProviderError as exc:
        raise JobError(f"The provider refused to delete the model: {exc}") from exc
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(model_deleted_at=now)
    job.model_deleted_at = now
    audit_record(
        actor=user, action="model_deleted", obj=job, detail={"model": job.fine_tuned_model}
    )
    return job


def job_set_archived(*, job: Job, user: AbstractBaseUser | None, archived: bool) -> Job:
    Job.objects.filter(pk=job.pk).update(archived=archived)
    audit_record(actor=user, action="job_archived" if archived else "job_unarchived", obj=job)
    job.archived = archived
    return job


def job_annotate(
    *,
    job: Job,
    user: AbstractBaseUser | None,
    name: str | None = None,
    notes: str | None = None,
    tags: list[str] | None = None,
) -> Job:
    fields = []
    if name is not None:
        job.name = name[:200]
        fields.append("name")
    if notes is not None:
        job.notes = notes
        fields.append("notes")
    if tags is not None:
        job.tags = sorted({t.strip()[:40] for t in tags if t.strip()})
        fields.append("tags")
    if fields:
        job.save(update_fields=fields)
        audit_record(actor=user, action="job_annotated", obj=job, detail={"fields": fields})
    return job
