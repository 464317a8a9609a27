"""Importing a connection's whole fine-tuning history, and archiving the connection after.

An import lists every job the provider knows (any state), creates the missing ``Job`` rows
(no creator, ``origin="imported"``), syncs each one fully with the polling machinery
(``jobs.sync``: events, checkpoints, metrics and the results file) and downloads its training
and validation files into Tuneboard's storage as datasets (deduplicated by SHA-256, validated
like uploads). A file the provider no longer serves is recorded as missing and the import
goes on.

Robustness. The work happens in steps of a time budget, each step holding a PostgreSQL
advisory lock for the connection (session level: it vanishes with a killed worker, and no
transaction is held across provider calls), and claiming the run with a conditional UPDATE.
The list of jobs is fixed once listed and a cursor records how far the run got, after each
job; everything written is an upsert keyed by provider ids, sha256 or (job, step). So a
killed worker, a redelivered or duplicated task, a provider outage or a second import all
end with the same rows and no duplicates, and a second import only adds what is new.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import leases, queue
from core.crypto import DecryptionError
from core.services import audit_record
from datasets.incoming import IncomingFile, UploadRejected, check_file_name
from datasets.models import Dataset
from datasets.services import dataset_create_from_upload
from datasets.uploads import max_upload_bytes
from jobs import storable
from jobs.connections import provider_for_connection
from jobs.locks import AdvisoryLock
from jobs.models import ImportedFile, ImportRun, Job, ProviderConnection, ProviderFile
from jobs.providers import (
    AuthError,
    JobInfo,
    NotFoundError,
    Provider,
    ProviderError,
    TransientProviderError,
)
from jobs.providers.paging import PageBudget, PagingError, paginate
from jobs.providers.records import MARKER_KEY, MARKER_PATTERN
from jobs.selectors import connection_problem
from jobs.services import METADATA_KEY, JobError
from jobs.sync import job_sync

log = logging.getLogger(__name__)
IMPORT_LOCK = "jobs.import"

STEP_BUDGET_SECONDS = 60.0  # per task; the next step is a new task, so others interleave
MAX_FAILURES = 6  # transient failures in a row before a run gives up (≈ 5 min of backoff)
RETRY_BASE_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
LIST_PAGE = 100
BUSY_WAIT_SECONDS = 10.0  # how long to wait for a poll of the same job to finish


class ImportStopped(Exception):
    """The connection became unusable (archived, disabled, key removed) during the run."""


@dataclass(frozen=True)
class Step:
    """What an import step ended with: "done", "continue" (budget used up), "retry" (after a
    transient failure, in ``delay`` seconds) or "busy" (another worker holds the run)."""

    state: str
    delay: float = 0.0


# --- requesting ---------------------------------------------------------------------------------


def import_request(
    *, connection: ProviderConnection, user: AbstractBaseUser | None, enqueue: bool = True
) -> ImportRun:
    """Start an import of ``connection``, or resume the one already queued or running (at
    most one per connection: a partial unique index). Returns the run."""
    problem = connection_problem(connection)
    if problem:
        raise JobError(f"{problem}: nothing can be imported from it.")
    actor = user if user is not None and user.is_authenticated else None
    with transaction.atomic():
        run = ImportRun.objects.filter(connection=connection, status__in=ImportRun.ACTIVE).first()
        resumed = run is not None
        if run is None:
            try:
                with transaction.atomic():
                    run = ImportRun.objects.create(
                        connection=connection, started_by=actor, **leases.queued_fields()
                    )
            except IntegrityError:  # someone else started one a moment ago
                run = ImportRun.objects.get(connection=connection, status__in=ImportRun.ACTIVE)
                resumed = True
        audit_record(
            actor=actor,
            action="import_resumed" if resumed else "import_requested",
            obj=connection,
            detail={"import_run": run.pk},
        )
        if enqueue:
            run_id = run.pk
            # Sent again: the reaper waits a lease for it (unless a worker holds it now).
            ImportRun.objects.filter(pk=run_id, lease_owner="").update(**leases.queued_fields())
            # robust: with the broker down the run waits, queued; "Resume" sends it again.
            queue.enqueue(IMPORT_TASK, run_id, robust=True)
    return run


IMPORT_TASK = "jobs.tasks.import_run_task"


def import_now(
    *,
    connection: ProviderConnection,
    user: AbstractBaseUser | None,
    max_failures: int = MAX_FAILURES,
    sleep: Any = time.sleep,
) -> ImportRun:
    """The same import, run to the end in this process (``manage.py import_jobs``)."""
    run = import_request(connection=connection, user=user, enqueue=False)
    while True:
        step = import_step(run_id=run.pk, budget=None, max_failures=max_failures)
        if step.state == "retry":
            sleep(step.delay)
            continue
        if step.state == "busy":
            raise JobError("Another process is importing this connection right now.")
        break
    run.refresh_from_db()
    return run


def import_step_and_continue(*, run_id: int) -> Step:
    """The task's body: one step, then the next one (or a retry) as a new task."""
    step = import_step(run_id=run_id)
    if step.state == "continue":
        queue.enqueue(IMPORT_TASK, run_id)
    elif step.state == "retry":
        queue.enqueue(IMPORT_TASK, run_id, countdown=step.delay)
    return step


# --- the lock and the claim -----------------------------------------------------------------------


def import_step(
    *, run_id: int, budget: float | None = STEP_BUDGET_SECONDS, max_failures: int = MAX_FAILURES
) -> Step:
    run = ImportRun.objects.filter(pk=run_id).first()
    if run is None or not run.is_active:
        return Step("done")
    with AdvisoryLock(IMPORT_LOCK, run.connection_id) as held:
        if not held:
            return Step("busy")
        now = timezone.now()
        # Holding the lock, this session is the only importer of the connection: the lease
        # is taken whoever held it (that session is gone), and tells the reaper who works.
        active = ImportRun.objects.filter(pk=run_id, status__in=ImportRun.ACTIVE)
        claimed = active.update(
            status=ImportRun.Status.RUNNING,
            started_at=Coalesce(F("started_at"), Value(now)),
            heartbeat_at=now,
            **leases.held_fields(),
        )
        if not claimed:
            return Step("done")
        run.refresh_from_db()
        connection = ProviderConnection.objects.get(pk=run.connection_id)
        step = Step("retry", delay=0.0)
        try:
            step = _Importer(run, connection, max_failures).work(budget)
        finally:
            # Between steps the run waits in the queue (the next step, or a retry later).
            active.update(**leases.queued_fields(delay=step.delay))
        return step


# --- the work ------------------------------------------------------------------------------------


def _text(value: str | None, field: str) -> str:
    """Provider text cut to the Job column it goes in (and fit for PostgreSQL)."""
    return storable.text(value, getattr(Job._meta.get_field(field), "max_length", None))


def _suffix(info: JobInfo) -> str:
    return _text(info.suffix or "", "suffix")


def _file_name(filename: str | None, file_id: str) -> str:
    name = (filename or "").strip()
    try:
        check_file_name(name)
    except UploadRejected:
        return f"{file_id}.jsonl"
    return name


class _Importer:
    def __init__(self, run: ImportRun, connection: ProviderConnection, max_failures: int):
        self.run = run
        self.connection = connection
        self.max_failures = max_failures
        self._provider: Provider | None = None

    @property
    def provider(self) -> Provider:
        if self._provider is None:
            self._provider = provider_for_connection(self.connection)
        return self._provider

    def _count(self, **increments: int) -> None:
        ImportRun.objects.filter(pk=self.run.pk).update(
            heartbeat_at=timezone.now(),
            **leases.held_fields(),
            **{k: F(k) + v for k, v in increments.items()},
        )

    def _error(self, message: str) -> None:
        ImportRun.objects.filter(pk=self.run.pk).update(
            errors=F("errors") + 1,
            last_error=message[:2000],
            heartbeat_at=timezone.now(),
            **leases.held_fields(),
        )

    def work(self, budget: float | None) -> Step:
        run = self.run
        problem = connection_problem(self.connection)
        if problem:
            return self._finish(ImportRun.Status.FAILED, f"{problem}; the import stopped.")
        deadline = None if budget is None else time.monotonic() + budget
        try:
            if run.job_ids is None:
                self._list()
            total = len(run.job_ids or [])
            while run.cursor < total:
                self._import_job(run.job_ids[run.cursor])
                run.cursor += 1
                ImportRun.objects.filter(pk=run.pk).update(
                    cursor=run.cursor,
                    jobs_done=run.cursor,
                    failures=0,
                    heartbeat_at=timezone.now(),
                    **leases.held_fields(),
                )
                run.failures = 0
                # At least one job per step, so every step makes progress.
                if deadline is not None and time.monotonic() >= deadline and run.cursor < total:
                    return Step("continue")
        except (TransientProviderError, SoftTimeLimitExceeded) as exc:
            if isinstance(exc, SoftTimeLimitExceeded):
                exc = TransientProviderError("One job took longer than the task time limit.")
            failures = run.failures + 1
            if failures >= self.max_failures:
                return self._finish(ImportRun.Status.FAILED, f"The provider kept failing: {exc}")
            ImportRun.objects.filter(pk=run.pk).update(
                failures=failures, last_error=str(exc)[:2000], heartbeat_at=timezone.now()
            )
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** (failures - 1))
            return Step("retry", delay=delay)
        except ImportStopped as exc:
            return self._finish(ImportRun.Status.FAILED, str(exc))
        except (ProviderError, DecryptionError, ValueError) as exc:
            log.warning("import %s failed: %s", run.pk, exc)
            return self._finish(ImportRun.Status.FAILED, str(exc))
        except Exception as exc:  # a bug or a database outage: never leave the run "running"
            log.exception("import %s failed unexpectedly", run.pk)
            return self._finish(
                ImportRun.Status.FAILED, f"Unexpected error ({type(exc).__name__}): {exc}"
            )
        return self._finish(ImportRun.Status.SUCCEEDED, "")

    def _finish(self, status: str, error: str) -> Step:
        fields: dict[str, Any] = {
            "status": status,
            "finished_at": timezone.now(),
            **leases.done_fields(),
        }
        if error:
            fields["last_error"] = error[:2000]
        ImportRun.objects.filter(pk=self.run.pk, status__in=ImportRun.ACTIVE).update(**fields)
        self.run.refresh_from_db()
        audit_record(
            actor=None,
            action="import_succeeded" if status == ImportRun.Status.SUCCEEDED else "import_failed",
            obj=self.connection,
            detail={
                "import_run": self.run.pk,
                "jobs": self.run.jobs_done,
                "jobs_created": self.run.jobs_created,
                "files_downloaded": self.run.files_downloaded,
                "files_missing": self.run.files_missing,
                "errors": self.run.errors,
            },
        )
        return Step("done")

    # listing ---------------------------------------------------------------------------------

    def _list(self) -> None:
        infos: dict[str, JobInfo] = {}
        try:
            for info in paginate(
                lambda after: self.provider.list_jobs(after=after, limit=LIST_PAGE),
                what="fine-tuning jobs",
                budget=PageBudget(settings.SYNC_MAX_PAGES),
            ):
                if info.id:
                    infos[info.id] = info
        except PagingError as exc:
            # A listing that does not end: import what it listed, and say so.
            self._error(str(exc))
        ordered = list(reversed(infos.values()))  # the API lists newest first
        known = dict(
            Job.objects.filter(
                connection=self.connection, provider_job_id__in=list(infos)
            ).values_list("provider_job_id", "pk")
        )
        job_ids: list[str] = []
        created = 0
        for info in ordered:
            pk = known.get(info.id)
            if pk is None:
                pk, made = self._adopt_or_create(info)
                created += made
            if pk is not None:
                job_ids.append(str(pk))
        self.run.job_ids = job_ids
        self.run.jobs_total = len(job_ids)
        ImportRun.objects.filter(pk=self.run.pk).update(
            job_ids=job_ids,
            jobs_total=len(job_ids),
            jobs_created=F("jobs_created") + created,
            heartbeat_at=timezone.now(),
            **leases.held_fields(),
        )

    def _adopt_or_create(self, info: JobInfo) -> tuple[Any, bool]:
        ours = self._launched_here(info)
        if ours is not None:
            if ours.provider_job_id is None and ours.status == Job.Status.LAUNCH_FAILED:
                # Created at the provider although the launch gave up: adopt it.
                Job.objects.filter(pk=ours.pk, provider_job_id__isnull=True).update(
                    provider_job_id=info.id,
                    status=_text(info.status, "status"),
                    training_file_id=_text(info.training_file, "training_file_id"),
                    validation_file_id=_text(info.validation_file, "validation_file_id"),
                    provider_created_at=storable.timestamp(info.created_at),
                    launch_error="",
                )
                return ours.pk, False
            if ours.provider_job_id is None:
                return None, False  # its launch task is still recording it
        terminal = info.status in Job.PROVIDER_TERMINAL
        status = _text(info.status, "status")
        job = Job(
            connection=self.connection,
            provider_job_id=_text(info.id, "provider_job_id"),
            origin=Job.Origin.IMPORTED,
            base_model=_text(info.model, "base_model"),
            model=_text(info.model, "model"),
            method=_text(info.method, "method"),
            hyperparameters=storable.json_value(info.hyperparameters),
            seed=storable.int64(info.seed),
            suffix=_suffix(info),
            integrations=storable.json_value(info.integrations or []),
            training_file_id=_text(info.training_file, "training_file_id"),
            validation_file_id=_text(info.validation_file, "validation_file_id"),
            provider_created_at=storable.timestamp(info.created_at),
            status=status,
            # History that had already finished is not news: no notification for it.
            notified_status=_text(status, "notified_status") if terminal else "",
        )
        try:
            with transaction.atomic():
                job.save()
        except IntegrityError:  # recorded meanwhile (a launch finishing)
            pk = (
                Job.objects.filter(connection=self.connection, provider_job_id=info.id)
                .values_list("pk", flat=True)
                .first()
            )
            return pk, False
        if job.provider_created_at is not None:
            # created_at is auto_now_add: the row's place in the runs list is the provider's date.
            Job.objects.filter(pk=job.pk).update(created_at=job.provider_created_at)
        return job.pk, True

    def _launched_here(self, info: JobInfo) -> Job | None:
        metadata = info.metadata or {}
        raw = metadata.get(METADATA_KEY)
        marker = metadata.get(MARKER_KEY)
        if not raw and marker and MARKER_PATTERN.fullmatch(marker):
            # A provider without metadata echoes the first hex digits of our id (the
            # launch's suffix): the ids that begin with them form one range.
            jobs = Job.objects.filter(
                connection=self.connection,
                pk__gte=uuid.UUID(marker.ljust(32, "0")),
                pk__lte=uuid.UUID(marker.ljust(32, "f")),
            )
            return jobs.first()
        if not raw:
            return None
        try:
            pk = uuid.UUID(raw)
        except ValueError:
            return None
        return Job.objects.filter(pk=pk, connection=self.connection).first()

    # one job ---------------------------------------------------------------------------------

    def _import_job(self, job_id: str) -> None:
        job = Job.objects.filter(pk=job_id).first()
        if job is None:
            return  # deleted meanwhile
        if self._needs_sync(job):
            self._sync(job)
            job.refresh_from_db()
        for field, file_id in (
            ("training_dataset", job.training_file_id),
            ("validation_dataset", job.validation_file_id),
        ):
            if not file_id or getattr(job, f"{field}_id") is not None:
                continue
            dataset = self._dataset_for(file_id)
            if dataset is not None:
                Job.objects.filter(pk=job.pk, **{f"{field}__isnull": True}).update(
                    **{field: dataset}
                )

    @staticmethod
    def _needs_sync(job: Job) -> bool:
        if not job.provider_job_id or job.status == Job.Status.LOST:
            return False
        settled = (
            job.status in Job.PROVIDER_TERMINAL
            and job.last_synced_at is not None
            and job.next_poll_at is None
        )
        return not settled

    def _sync(self, job: Job) -> None:
        waited = 0.0
        while True:
            outcome = job_sync(job_id=job.pk, full=True)
            if outcome.ran:
                break
            if outcome.error:  # the connection became unusable
                raise ImportStopped(f"The import stopped: {outcome.error}.")
            if waited >= BUSY_WAIT_SECONDS:
                raise TransientProviderError(
                    f"Another sync of {job.provider_job_id} is still running."
                )
            time.sleep(0.5)
            waited += 0.5
        exc = outcome.exception
        if exc is None or isinstance(exc, NotFoundError):
            return  # synced, or gone at the provider (the job is marked lost)
        if isinstance(exc, TransientProviderError | AuthError):
            raise exc
        # Recorded on the job too; one job that cannot be synced never stops the others.
        self._error(f"{job.provider_job_id}: {outcome.error}")

    # files -----------------------------------------------------------------------------------

    def _dataset_for(self, file_id: str) -> Dataset | None:
        record = (
            ImportedFile.objects.filter(connection=self.connection, provider_file_id=file_id)
            .select_related("dataset")
            .first()
        )
        if record is not None:
            if record.status != ImportedFile.Status.DOWNLOADED:
                return None  # missing or refused before: asking again changes nothing
            if record.dataset is not None:
                return record.dataset
        # A file Tuneboard uploaded itself is already stored under its content hash.
        sha256 = (
            ProviderFile.objects.filter(connection=self.connection, provider_file_id=file_id)
            .values_list("sha256", flat=True)
            .first()
        )
        dataset = Dataset.objects.filter(sha256=sha256).first() if sha256 else None
        if dataset is not None:
            self._record(file_id, ImportedFile.Status.DOWNLOADED, dataset=dataset)
            return dataset
        return self._download(file_id)

    def _record(self, file_id: str, status: str, **fields: Any) -> None:
        dataset = fields.get("dataset")
        if dataset is not None:
            fields.setdefault("sha256", dataset.sha256)
            fields.setdefault("bytes", dataset.size)
        ImportedFile.objects.update_or_create(
            connection=self.connection,
            provider_file_id=file_id,
            defaults={"status": status, **fields},
        )

    def _download(self, file_id: str) -> Dataset | None:
        """Stream the file into an incoming file (hashed and checked on the way, as uploads
        are), then store it as a dataset, deduplicated by sha256."""
        try:
            info = self.provider.retrieve_file(file_id)
        except NotFoundError as exc:
            return self._missing(file_id, exc)
        name = _file_name(info.filename, file_id)
        sink = IncomingFile(max_bytes=max_upload_bytes())
        try:
            size = self.provider.download_file_to(file_id, sink.write)
            incoming = sink.finish(name)
        except NotFoundError as exc:
            sink.discard()
            return self._missing(file_id, exc)
        except UploadRejected as exc:
            sink.discard()
            self._record(
                file_id,
                ImportedFile.Status.REJECTED,
                filename=name,
                bytes=sink.size,
                error=exc.message[:1000],
            )
            self._error(f"{file_id} ({name}): {exc.message}")
            return None
        except BaseException:
            sink.discard()
            raise
        outcome = dataset_create_from_upload(
            upload=incoming,
            name=name.rsplit(".", 1)[0][:200] or file_id,
            description=(
                f"Imported from the connection “{self.connection.name}” "
                f"(provider file {file_id}, {size:,} bytes)."
            ),
            uploaded_by=None,
        )
        dataset = outcome.dataset
        self._record(file_id, ImportedFile.Status.DOWNLOADED, dataset=dataset, filename=name)
        try:
            with transaction.atomic():
                ProviderFile.objects.get_or_create(
                    connection=self.connection,
                    sha256=dataset.sha256,
                    purpose="fine-tune",
                    defaults={"provider_file_id": file_id, "bytes": dataset.size},
                )
        except IntegrityError:
            pass  # the same content is known under another provider file id
        self._count(files_downloaded=1)
        return dataset

    def _missing(self, file_id: str, exc: NotFoundError) -> None:
        self._record(file_id, ImportedFile.Status.MISSING, error=str(exc)[:1000])
        self._count(files_missing=1)
        return None
