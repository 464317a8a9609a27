"""Export bundles: a connection's (or some runs') complete archive as one zip file, and the
import of such a file into another Tuneboard.

Layout (format ``tuneboard-bundle``, version 1)::

    manifest.json        format, version, when, what was selected, counts, files
    connections.jsonl    name, kind, base URL, headers (never a key or a secret)
    datasets.jsonl       name, description, tags, file name, size, sha256 …
    jobs.jsonl           every stored field of each job (datasets by sha256, creator by name)
    events.jsonl         one line per event   {"job": <job id>, …}
    checkpoints.jsonl    one line per checkpoint
    metrics.jsonl        one line per (job, step)
    datasets/<sha256>.jsonl   the dataset files themselves

Export streams: the zip is written to a sink that the response drains after every few rows
(zip data descriptors need no seeking), rows come from database iterators, files are copied
in 1 MB chunks. Import is idempotent: jobs are keyed by their id (and by connection and
provider job id), datasets by sha256, and rows of jobs that were already present are not
touched, so importing the same bundle twice changes nothing.
"""

from __future__ import annotations

import io
import json
import math
import re
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from core.services import audit_record
from datasets.incoming import UploadRejected, check_file_name, incoming_from_chunks
from datasets.models import MAX_TAG_LENGTH, MAX_TAGS, Dataset
from datasets.services import dataset_create_from_upload
from datasets.uploads import max_upload_bytes
from jobs import curvestore, metrics
from jobs.models import (
    Checkpoint,
    Job,
    JobEvent,
    MetricPoint,
    ProviderConnection,
    Sweep,
    SweepRun,
)
from jobs.providers import traits

FORMAT = "tuneboard-bundle"
VERSION = 1
CHUNK = 1 << 20
FLUSH_BYTES = 256 * 1024
BATCH = 1000
MAX_LINE = 64 * 1024 * 1024
SHA_RE = re.compile(r"^[0-9a-f]{64}$")

CONNECTION_FIELDS = ("name", "kind", "base_url", "organization", "project", "api_version")
DATASET_FIELDS = (
    "sha256", "name", "description", "tags", "original_filename", "size", "line_count",
    "format", "uploaded_at", "derivation",
)  # fmt: skip
JOB_FIELDS = (
    "provider_job_id", "name", "notes", "tags", "base_model", "method",
    "requested_hyperparameters", "suffix", "seed", "integrations", "created_at", "status",
    "model", "hyperparameters", "fine_tuned_model", "model_deleted_at", "trained_tokens",
    "estimated_finish", "error", "result_files", "training_file_id", "validation_file_id",
    "provider_created_at", "started_at", "finished_at", "total_steps", "last_step",
    "final_train_loss", "best_full_valid_loss", "best_full_valid_step", "last_synced_at",
    "last_sync_error", "last_event_id", "launch_error", "archived", "origin", "provider_status",
)  # fmt: skip
DATETIME_FIELDS = frozenset(
    {"created_at", "model_deleted_at", "estimated_finish", "provider_created_at", "started_at",
     "finished_at", "last_synced_at", "uploaded_at"}
)  # fmt: skip
EVENT_FIELDS = ("provider_event_id", "created_at", "level", "type", "message", "data")
SWEEP_FIELDS = ("name", "created_at", "method", "mode", "space", "samples", "sample_seed",
                "budget_usd", "planned_cost_usd", "concurrency", "guardrails", "status",
                "status_message", "finished_at")  # fmt: skip
SWEEP_RUN_FIELDS = ("index", "base_model", "hyperparameters", "seed", "billed_tokens",
                    "planned_cost_usd", "state", "launched_at", "active_at_launch",
                    "committed_at_launch", "skip_reason")  # fmt: skip
CHECKPOINT_FIELDS = ("provider_checkpoint_id", "step", "model_name", "metrics", "created_at")
METRIC_FIELDS = ("step", *metrics.COLUMNS, "extra")


class BundleError(Exception):
    """The file is not a bundle this Tuneboard can import; the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Bundle:
    """What an audit entry about a bundle points at."""

    pk: str
    label: str

    def __str__(self) -> str:
        return self.label


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row, default=_default, ensure_ascii=False, allow_nan=False).encode() + b"\n"


# --- export -------------------------------------------------------------------------------------


def jobs_for_export(
    *, connection: ProviderConnection | None = None, job_ids: Iterable[Any] = ()
) -> QuerySet[Job]:
    if connection is not None:
        return Job.objects.filter(connection=connection)
    return Job.objects.filter(pk__in=list(job_ids))


class _Sink:
    """A write-only, unseekable file for zipfile: bytes written wait here until drained."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self.pending = 0
        self.total = 0

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        self.pending += len(data)
        self.total += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> Iterator[bytes]:
        if self._chunks:
            data = b"".join(self._chunks)
            self._chunks.clear()
            self.pending = 0
            yield data


def bundle_filename(label: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")[:60] or "runs"
    return f"tuneboard-{slug}-{timezone.now():%Y%m%d-%H%M%S}.zip"


def bundle_stream(*, jobs: QuerySet[Job], selection: dict[str, Any]) -> Iterator[bytes]:
    """The zip, as chunks of bytes, in bounded memory."""
    sink = _Sink()
    job_ids = list(jobs.order_by("created_at", "id").values_list("pk", flat=True))
    counts: dict[str, int] = {}
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:

        def entry(name: str, rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
            count = 0
            with zf.open(name, "w", force_zip64=True) as out:
                for row in rows:
                    out.write(_line(row))
                    count += 1
                    if sink.pending >= FLUSH_BYTES:
                        yield from sink.drain()
            counts[name.removesuffix(".jsonl")] = count
            yield from sink.drain()

        connection_ids = set(
            Job.objects.filter(pk__in=job_ids).values_list("connection_id", flat=True)
        )
        connections = ProviderConnection.objects.filter(pk__in=connection_ids).order_by("name")
        yield from entry(
            "connections.jsonl",
            ({k: getattr(c, k) for k in CONNECTION_FIELDS} for c in connections),
        )
        dataset_ids = set()
        for training, validation in Job.objects.filter(pk__in=job_ids).values_list(
            "training_dataset_id", "validation_dataset_id"
        ):
            dataset_ids.update(i for i in (training, validation) if i is not None)
        datasets = list(
            Dataset.objects.filter(pk__in=dataset_ids).only(*DATASET_FIELDS, "file").order_by("id")
        )
        yield from entry(
            "datasets.jsonl", ({k: getattr(d, k) for k in DATASET_FIELDS} for d in datasets)
        )
        yield from entry("jobs.jsonl", _job_rows(job_ids))
        yield from entry(
            "events.jsonl",
            _child_rows(JobEvent.objects.order_by("job_id", "id"), job_ids, EVENT_FIELDS),
        )
        yield from entry(
            "checkpoints.jsonl",
            _child_rows(Checkpoint.objects.order_by("job_id", "step", "id"), job_ids, CHECKPOINT_FIELDS),
        )  # fmt: skip
        yield from entry(
            "metrics.jsonl",
            _child_rows(MetricPoint.objects.order_by("job_id", "step"), job_ids, METRIC_FIELDS),
        )
        yield from entry("sweeps.jsonl", _sweep_rows(job_ids))
        files: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for dataset in datasets:
            try:
                source = dataset.file.open("rb")
            except OSError:
                missing.append(dataset.sha256)
                continue
            path = f"datasets/{dataset.sha256}.jsonl"
            with source, zf.open(path, "w", force_zip64=True) as out:
                for chunk in iter(lambda source=source: source.read(CHUNK), b""):
                    out.write(chunk)
                    if sink.pending >= FLUSH_BYTES:
                        yield from sink.drain()
            files[dataset.sha256] = {"path": path, "size": dataset.size}
            yield from sink.drain()
        manifest = {
            "format": FORMAT,
            "version": VERSION,
            "created_at": timezone.now().isoformat(),
            "selection": selection,
            "counts": counts,
            "files": files,
            "missing_files": missing,
        }
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, default=_default))
    yield from sink.drain()


def _job_rows(job_ids: list[Any]) -> Iterator[dict[str, Any]]:
    rows = (
        Job.objects.filter(pk__in=job_ids)
        .select_related("connection", "created_by", "training_dataset", "validation_dataset")
        .only(
            *JOB_FIELDS,
            "id",
            "connection__name",
            "created_by__username",
            "training_dataset__sha256",
            "validation_dataset__sha256",
            "cloned_from_id",
        )
        .order_by("created_at", "id")
    )
    for job in rows.iterator(chunk_size=500):
        row = {"id": str(job.pk), "connection": job.connection.name}
        row.update({k: getattr(job, k) for k in JOB_FIELDS})
        row["created_by"] = job.created_by.get_username() if job.created_by else None
        row["training_dataset"] = job.training_dataset.sha256 if job.training_dataset else None
        row["validation_dataset"] = (
            job.validation_dataset.sha256 if job.validation_dataset else None
        )
        row["cloned_from"] = str(job.cloned_from_id) if job.cloned_from_id else None
        yield row


def _sweep_rows(job_ids: list[Any]) -> Iterator[dict[str, Any]]:
    """Each sweep one of the exported jobs ran in, with all its planned runs."""
    sweep_ids: set[int] = set()
    for start in range(0, len(job_ids), 500):
        sweep_ids.update(
            SweepRun.objects.filter(job_id__in=job_ids[start : start + 500]).values_list(
                "sweep_id", flat=True
            )
        )
    sweeps = (
        Sweep.objects.filter(pk__in=sweep_ids)
        .select_related("connection", "training_dataset", "validation_dataset", "created_by")
        .order_by("created_at", "id")
    )
    for sweep in sweeps:
        row: dict[str, Any] = {k: getattr(sweep, k) for k in SWEEP_FIELDS}
        row["connection"] = sweep.connection.name
        row["created_by"] = sweep.created_by.get_username() if sweep.created_by else None
        row["training_dataset"] = sweep.training_dataset.sha256
        row["validation_dataset"] = (
            sweep.validation_dataset.sha256 if sweep.validation_dataset else None
        )
        row["runs"] = [
            {**{k: getattr(run, k) for k in SWEEP_RUN_FIELDS},
             "job": str(run.job_id) if run.job_id else None}
            for run in sweep.runs.order_by("index")
        ]  # fmt: skip
        yield row


def _child_rows(
    queryset: QuerySet[Any], job_ids: list[Any], fields: tuple[str, ...]
) -> Iterator[dict[str, Any]]:
    for start in range(0, len(job_ids), 200):
        part = queryset.filter(job_id__in=job_ids[start : start + 200]).values("job_id", *fields)
        for row in part.iterator(chunk_size=2000):
            row["job"] = str(row.pop("job_id"))
            yield row


def bundle_export_audit(
    *, actor: AbstractBaseUser | None, label: str, selection: dict[str, Any], jobs: int
) -> None:
    audit_record(
        actor=actor,
        action="bundle_exported",
        obj=Bundle(pk=label[:64], label=label),
        detail={**selection, "jobs": jobs},
    )


def bundle_write(*, jobs: QuerySet[Job], selection: dict[str, Any], path: Path) -> int:
    """Write a bundle to a file (``manage.py export_bundle``); returns its size in bytes."""
    size = 0
    with open(path, "wb") as out:
        for chunk in bundle_stream(jobs=jobs, selection=selection):
            out.write(chunk)
            size += len(chunk)
    return size


# --- import -------------------------------------------------------------------------------------


@dataclass
class BundleOutcome:
    connections_created: int = 0
    datasets_created: int = 0
    datasets_present: int = 0
    jobs_created: int = 0
    jobs_present: int = 0
    events: int = 0
    checkpoints: int = 0
    metrics: int = 0
    sweeps_created: int = 0
    missing_files: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.jobs_created} job(s) imported, {self.jobs_present} already present; "
            f"{self.datasets_created} dataset(s) stored, {self.datasets_present} already present; "
            f"{self.events} events, {self.checkpoints} checkpoints, {self.metrics} metric rows"
            + (f"; {self.sweeps_created} sweep(s)." if self.sweeps_created else ".")
        )


def _rows(zf: zipfile.ZipFile, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        raw = zf.open(name)
    except KeyError:
        raise BundleError(f"The bundle has no {name}.") from None
    with raw, io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as text:
        number = 0
        while True:
            try:
                line = text.readline(MAX_LINE)
            except (UnicodeDecodeError, zipfile.BadZipFile, OSError) as exc:
                raise BundleError(f"{name} cannot be read: {exc}") from None
            if not line:
                return
            number += 1
            if not line.endswith("\n") and len(line) >= MAX_LINE:
                raise BundleError(f"{name}, line {number}: the line is too long.")
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise BundleError(f"{name}, line {number}: not valid JSON.") from None
            if not isinstance(row, dict):
                raise BundleError(f"{name}, line {number}: expected an object.")
            yield number, row


def _manifest(zf: zipfile.ZipFile) -> dict[str, Any]:
    try:
        raw = zf.read("manifest.json")
    except KeyError:
        raise BundleError(
            "This zip file has no manifest.json: it is not a Tuneboard bundle."
        ) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise BundleError(f"The manifest cannot be read: {exc}") from None
    try:
        manifest = json.loads(raw)
    except ValueError:
        raise BundleError("manifest.json is not valid JSON.") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError("manifest.json does not describe a Tuneboard bundle.")
    version = manifest.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError("manifest.json has no valid format version.")
    if version > VERSION:
        raise BundleError(
            f"The bundle has format version {version}; this Tuneboard reads up to {VERSION}."
        )
    return manifest


class _Check:
    """Type checks for one row, with the file name and line in every message."""

    def __init__(self, name: str, number: int, row: dict[str, Any]) -> None:
        self.where = f"{name}, line {number}"
        self.row = row

    def fail(self, key: str, what: str) -> BundleError:
        return BundleError(f"{self.where}: “{key}” must be {what}.")

    def text(self, key: str, *, max_length: int, required: bool = False) -> str:
        value = self.row.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or len(value) > max_length or (required and not value):
            raise self.fail(key, f"a text of at most {max_length} characters")
        return value

    def opt_text(self, key: str, *, max_length: int) -> str | None:
        return self.text(key, max_length=max_length) if self.row.get(key) is not None else None

    def integer(self, key: str, *, required: bool = False) -> int | None:
        value = self.row.get(key)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**62:
            raise self.fail(key, "an integer")
        return value

    def number(self, key: str) -> float | None:
        value = self.row.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number")
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(key, "a finite number")
        return number

    def flag(self, key: str) -> bool:
        value = self.row.get(key, False)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def moment(self, key: str, *, required: bool = False) -> datetime | None:
        value = self.row.get(key)
        if value is None and not required:
            return None
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None or timezone.is_naive(parsed):
            raise self.fail(key, "an ISO 8601 date and time with a time zone")
        return parsed

    def obj(self, key: str, kind: type, default: Any) -> Any:
        value = self.row.get(key, default)
        if value is None:
            return default
        if not isinstance(value, kind):
            raise self.fail(key, f"a JSON {'object' if kind is dict else 'list'}")
        return value

    def ident(self, key: str, *, required: bool = False) -> uuid.UUID | None:
        value = self.row.get(key)
        if value is None and not required:
            return None
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise self.fail(key, "a job id (UUID)") from None

    def sha(self, key: str) -> str | None:
        value = self.row.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not SHA_RE.match(value):
            raise self.fail(key, "a SHA-256 in hex")
        return value


def bundle_import(
    *, source: str | Path | IO[bytes], actor: AbstractBaseUser | None
) -> BundleOutcome:
    """Import a bundle. Raises ``BundleError`` for files that are not valid bundles; then
    nothing is imported but the dataset files already stored, which a second attempt reuses."""
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise BundleError("The file is not a zip archive (a Tuneboard export bundle).") from None
    outcome = BundleOutcome()
    with zf:
        manifest = _manifest(zf)
        # Dataset files first, each stored once by sha256 (a failed import leaves them for the
        # next attempt to reuse); then every row in one transaction: all of it or nothing.
        datasets = _import_datasets(zf, outcome)
        with transaction.atomic():
            connections = _import_connections(zf, outcome, actor)
            created = _import_jobs(zf, outcome, connections, datasets)
            _import_children(zf, outcome, created)
            _import_sweeps(zf, outcome, connections, datasets)
            # Rows written in bulk, around the ingest: their display curves from all of them.
            for job_id in sorted(created):
                curvestore.rebuild(job_id)
        label = f"bundle of {manifest.get('created_at', 'unknown date')}"
        audit_record(
            actor=actor,
            action="bundle_imported",
            obj=Bundle(pk=str(manifest.get("created_at", ""))[:64], label=label),
            detail={
                "jobs_created": outcome.jobs_created,
                "jobs_present": outcome.jobs_present,
                "datasets_created": outcome.datasets_created,
            },
        )
    return outcome


def _import_connections(
    zf: zipfile.ZipFile, outcome: BundleOutcome, actor: AbstractBaseUser | None
) -> dict[str, ProviderConnection]:
    result: dict[str, ProviderConnection] = {}
    for number, row in _rows(zf, "connections.jsonl"):
        check = _Check("connections.jsonl", number, row)
        name = check.text("name", max_length=100, required=True)
        kind = check.text("kind", max_length=20, required=True)
        if kind not in ProviderConnection.Kind.values:
            raise check.fail("kind", f"one of {', '.join(ProviderConnection.Kind.values)}")
        # Self-hosted connections have no provider URL.
        base_url = check.text("base_url", max_length=300, required=traits(kind).hosted)
        existing = ProviderConnection.objects.filter(name=name).first()
        if existing is None:
            # Known only from the bundle: archived (no key), so nothing polls it.
            existing = ProviderConnection.objects.create(
                name=name,
                kind=kind,
                base_url=base_url,
                organization=check.text("organization", max_length=100),
                project=check.text("project", max_length=100),
                api_version=check.text("api_version", max_length=40),
                archived_at=timezone.now(),
            )
            outcome.connections_created += 1
            audit_record(
                actor=actor,
                action="connection_created",
                obj=existing,
                detail={"from": "bundle", "archived": True},
            )
        result[name] = existing
    return result


def _dataset_name(row: _Check, sha256: str) -> str:
    name = row.text("original_filename", max_length=255)
    try:
        check_file_name(name)
    except UploadRejected:
        return f"{sha256[:12]}.jsonl"
    return name


def _import_datasets(zf: zipfile.ZipFile, outcome: BundleOutcome) -> dict[str, Dataset]:
    result: dict[str, Dataset] = {}
    names = set(zf.namelist())
    for number, row in _rows(zf, "datasets.jsonl"):
        check = _Check("datasets.jsonl", number, row)
        sha256 = check.sha("sha256")
        if sha256 is None:
            raise check.fail("sha256", "a SHA-256 in hex")
        tags = check.obj("tags", list, [])
        if len(tags) > MAX_TAGS or not all(
            isinstance(t, str) and 0 < len(t) <= MAX_TAG_LENGTH for t in tags
        ):
            raise check.fail(
                "tags", f"at most {MAX_TAGS} texts of up to {MAX_TAG_LENGTH} characters"
            )
        name = check.text("name", max_length=200) or sha256[:12]
        description = check.text("description", max_length=100_000)
        existing = Dataset.objects.filter(sha256=sha256).first()
        if existing is not None:
            result[sha256] = existing
            outcome.datasets_present += 1
            continue
        path = f"datasets/{sha256}.jsonl"
        if path not in names:
            outcome.missing_files.append(sha256)
            continue
        try:
            with zf.open(path) as source:
                incoming = incoming_from_chunks(
                    iter(lambda: source.read(CHUNK), b""),
                    name=_dataset_name(check, sha256),
                    max_bytes=max_upload_bytes(),
                )
        except UploadRejected as exc:
            raise BundleError(f"{path}: {exc.message}") from None
        except (zipfile.BadZipFile, OSError) as exc:
            raise BundleError(f"{path} cannot be read: {exc}") from None
        if incoming.sha256 != sha256:
            incoming.close()
            raise BundleError(f"{path} does not match its SHA-256: the bundle is damaged.")
        stored = dataset_create_from_upload(
            upload=incoming, name=name, description=description, tags=tags, uploaded_by=None
        )
        result[sha256] = stored.dataset
        if stored.created:
            outcome.datasets_created += 1
        else:
            outcome.datasets_present += 1
    return result


def _job_from_row(
    check: _Check,
    connections: dict[str, ProviderConnection],
    datasets: dict[str, Dataset],
    users: dict[str, Any],
) -> Job:
    connection_name = check.text("connection", max_length=100, required=True)
    if connection_name not in connections:
        raise check.fail("connection", "a connection listed in connections.jsonl")
    status = check.text("status", max_length=64, required=True)
    training = check.sha("training_dataset")
    validation = check.sha("validation_dataset")
    creator = check.opt_text("created_by", max_length=150)
    job = Job(
        id=check.ident("id", required=True),
        connection=connections[connection_name],
        provider_job_id=check.opt_text("provider_job_id", max_length=100),
        name=check.text("name", max_length=200),
        notes=check.text("notes", max_length=100_000),
        tags=check.obj("tags", list, []),
        created_by=users.get(creator) if creator else None,
        base_model=check.text("base_model", max_length=300),
        method=check.text("method", max_length=20) or Job.Method.SUPERVISED,
        requested_hyperparameters=check.obj("requested_hyperparameters", dict, {}),
        suffix=check.text("suffix", max_length=64),
        seed=check.integer("seed"),
        integrations=check.obj("integrations", list, []),
        training_dataset=datasets.get(training) if training else None,
        validation_dataset=datasets.get(validation) if validation else None,
        status=status,
        # The provider's own word (Together's "completed"…); absent from older bundles.
        provider_status=check.text("provider_status", max_length=64),
        model=check.text("model", max_length=300),
        hyperparameters=check.obj("hyperparameters", dict, {}),
        fine_tuned_model=check.text("fine_tuned_model", max_length=300),
        model_deleted_at=check.moment("model_deleted_at"),
        trained_tokens=check.integer("trained_tokens"),
        estimated_finish=check.moment("estimated_finish"),
        error=check.obj("error", dict, None),
        result_files=check.obj("result_files", list, []),
        training_file_id=check.text("training_file_id", max_length=100),
        validation_file_id=check.text("validation_file_id", max_length=100),
        provider_created_at=check.moment("provider_created_at"),
        started_at=check.moment("started_at"),
        finished_at=check.moment("finished_at"),
        total_steps=check.integer("total_steps"),
        last_step=check.integer("last_step"),
        final_train_loss=check.number("final_train_loss"),
        best_full_valid_loss=check.number("best_full_valid_loss"),
        best_full_valid_step=check.integer("best_full_valid_step"),
        last_synced_at=check.moment("last_synced_at"),
        last_sync_error=check.text("last_sync_error", max_length=100_000),
        last_event_id=check.text("last_event_id", max_length=100),
        launch_error=check.text("launch_error", max_length=100_000),
        archived=check.flag("archived"),
        origin=Job.Origin.BUNDLE,
        # Imported history is not news, and the provider is not asked about it.
        notified_status=status if status in Job.PROVIDER_TERMINAL else "",
        next_poll_at=None,
    )
    job.created_at = check.moment("created_at", required=True)
    return job


def _import_jobs(
    zf: zipfile.ZipFile,
    outcome: BundleOutcome,
    connections: dict[str, ProviderConnection],
    datasets: dict[str, Dataset],
) -> set[uuid.UUID]:
    created: set[uuid.UUID] = set()
    clones: list[tuple[uuid.UUID, uuid.UUID]] = []
    users = {u.get_username(): u for u in get_user_model().objects.all()}
    for number, row in _rows(zf, "jobs.jsonl"):
        check = _Check("jobs.jsonl", number, row)
        job = _job_from_row(check, connections, datasets, users)
        present = Job.objects.filter(pk=job.pk).exists() or (
            job.provider_job_id
            and Job.objects.filter(
                connection=job.connection, provider_job_id=job.provider_job_id
            ).exists()
        )
        if present or job.pk in created:
            outcome.jobs_present += 1
            continue
        created_at = job.created_at
        job.save(force_insert=True)
        Job.objects.filter(pk=job.pk).update(created_at=created_at)  # auto_now_add otherwise
        created.add(job.pk)
        outcome.jobs_created += 1
        source = check.ident("cloned_from")
        if source is not None:
            clones.append((job.pk, source))
    for job_id, source in clones:
        if Job.objects.filter(pk=source).exists():
            Job.objects.filter(pk=job_id).update(cloned_from_id=source)
    return created


def _money(check: _Check, key: str) -> Decimal:
    value = check.row.get(key)
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        raise check.fail(key, "an amount in USD") from None
    if not amount.is_finite() or amount < 0 or amount >= 10**10:
        raise check.fail(key, "an amount in USD")
    return amount


def _import_sweeps(
    zf: zipfile.ZipFile,
    outcome: BundleOutcome,
    connections: dict[str, ProviderConnection],
    datasets: dict[str, Dataset],
) -> None:
    """The bundle's sweeps (bundles made before sweeps have none), each with its runs linked to
    the jobs now here. An imported sweep launches nothing: one still under way when exported
    is stopped here, and says so."""
    if "sweeps.jsonl" not in zf.namelist():
        return
    users = {u.get_username(): u for u in get_user_model().objects.all()}
    for number, row in _rows(zf, "sweeps.jsonl"):
        check = _Check("sweeps.jsonl", number, row)
        name = check.text("name", max_length=200, required=True)
        connection = connections.get(check.text("connection", max_length=100, required=True))
        training = datasets.get(check.sha("training_dataset") or "")
        created_at = check.moment("created_at", required=True)
        if connection is None or training is None:
            continue  # its connection or dataset is not in the bundle
        if Sweep.objects.filter(name=name, connection=connection, created_at=created_at).exists():
            continue
        status = check.text("status", max_length=20) or Sweep.Status.FINISHED
        message = check.text("status_message", max_length=100_000)
        if status not in Sweep.Status.values or status in Sweep.ACTIVE:
            status, message = Sweep.Status.STOPPED, "Imported from a bundle while under way."
        validation = check.sha("validation_dataset")
        creator = check.opt_text("created_by", max_length=150)
        sweep = Sweep.objects.create(
            name=name, connection=connection, training_dataset=training,
            validation_dataset=datasets.get(validation) if validation else None,
            created_by=users.get(creator) if creator else None,
            method=check.text("method", max_length=20) or Job.Method.SUPERVISED,
            mode=check.text("mode", max_length=10) or Sweep.Mode.GRID,
            space=check.obj("space", dict, {}), samples=check.integer("samples"),
            sample_seed=check.integer("sample_seed") or 0,
            budget_usd=_money(check, "budget_usd"),
            planned_cost_usd=_money(check, "planned_cost_usd"),
            concurrency=max(1, check.integer("concurrency") or 1),
            guardrails=check.obj("guardrails", list, None), status=status,
            status_message=message, finished_at=check.moment("finished_at"),
        )  # fmt: skip
        Sweep.objects.filter(pk=sweep.pk).update(created_at=created_at)
        runs = check.obj("runs", list, [])
        job_ids = {str(j) for j in Job.objects.filter(
            pk__in=[r.get("job") for r in runs if isinstance(r, dict) and r.get("job")],
            sweep_run__isnull=True,
        ).values_list("pk", flat=True)}  # fmt: skip
        planned = []
        for item in runs:
            run = _Check("sweeps.jsonl", number, item if isinstance(item, dict) else {})
            job = str(run.ident("job") or "")
            state = run.text("state", max_length=10)
            planned.append(SweepRun(
                sweep=sweep, index=run.integer("index", required=True),
                base_model=run.text("base_model", max_length=300),
                hyperparameters=run.obj("hyperparameters", dict, {}), seed=run.integer("seed"),
                billed_tokens=run.integer("billed_tokens"),
                planned_cost_usd=_money(run, "planned_cost_usd"),
                state=state if state in SweepRun.State.values else SweepRun.State.SKIPPED,
                job_id=job if job in job_ids else None,
                launched_at=run.moment("launched_at"),
                active_at_launch=run.integer("active_at_launch"),
                skip_reason=run.text("skip_reason", max_length=100_000),
            ))  # fmt: skip
        SweepRun.objects.bulk_create(planned)
        outcome.sweeps_created += 1


def _batches(
    zf: zipfile.ZipFile, name: str, created: set[uuid.UUID]
) -> Iterator[list[tuple[_Check, uuid.UUID]]]:
    batch: list[tuple[_Check, uuid.UUID]] = []
    for number, row in _rows(zf, name):
        check = _Check(name, number, row)
        job_id = check.ident("job", required=True)
        if job_id not in created:
            continue  # the job was already here: its rows are too
        batch.append((check, job_id))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _import_children(zf: zipfile.ZipFile, outcome: BundleOutcome, created: set[uuid.UUID]) -> None:
    for batch in _batches(zf, "events.jsonl", created):
        JobEvent.objects.bulk_create(
            [
                JobEvent(
                    job_id=job_id,
                    provider_event_id=c.text("provider_event_id", max_length=100, required=True),
                    created_at=c.moment("created_at", required=True),
                    level=c.text("level", max_length=10) or "info",
                    type=c.text("type", max_length=20) or "message",
                    message=c.text("message", max_length=1_000_000),
                    data=c.obj("data", dict, {}),
                )
                for c, job_id in batch
            ],
            ignore_conflicts=True,
        )
        outcome.events += len(batch)
    for batch in _batches(zf, "checkpoints.jsonl", created):
        Checkpoint.objects.bulk_create(
            [
                Checkpoint(
                    job_id=job_id,
                    provider_checkpoint_id=c.text(
                        "provider_checkpoint_id", max_length=100, required=True
                    ),
                    step=c.integer("step", required=True),
                    model_name=c.text("model_name", max_length=300),
                    metrics=c.obj("metrics", dict, {}),
                    created_at=c.moment("created_at", required=True),
                )
                for c, job_id in batch
            ],
            ignore_conflicts=True,
        )
        outcome.checkpoints += len(batch)
    for batch in _batches(zf, "metrics.jsonl", created):
        MetricPoint.objects.bulk_create(
            [
                MetricPoint(
                    job_id=job_id,
                    step=c.integer("step", required=True),
                    extra=c.obj("extra", dict, {}),
                    **{column: c.number(column) for column in metrics.COLUMNS},
                )
                for c, job_id in batch
            ],
            ignore_conflicts=True,
        )
        outcome.metrics += len(batch)
