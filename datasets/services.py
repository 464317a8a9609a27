"""Every write to datasets: uploads, validation, re-validation, derived datasets, deletion."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import ProtectedError, Q
from django.utils import timezone
from django.utils.text import slugify

from core import leases, queue
from datasets import selectors
from datasets.derive import (
    DeriveRejected,
    QuotaSampler,
    count_units,
    iter_units,
    quotas,
    round_half_up,
)
from datasets.incoming import IncomingFile, IncomingUpload, incoming_from_chunks
from datasets.models import BaseModel, Dataset
from datasets.uploads import max_upload_bytes
from datasets.validation import (
    Report,
    TokenizerError,
    can_recompute,
    recompute_for_model,
    validate_stream,
)

log = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.5
TRANSIENT_ERRORS = (OperationalError, InterfaceError)

Status = Dataset.Status


def storage_name(sha256: str) -> str:
    return f"datasets/{sha256[:2]}/{sha256}.jsonl"


@dataclass(frozen=True)
class StoreOutcome:
    dataset: Dataset
    created: bool


# --- creating datasets -----------------------------------------------------------------------


def dataset_create_from_upload(
    *,
    upload: UploadedFile,
    name: str,
    description: str = "",
    tags: Sequence[str] = (),
    uploaded_by: AbstractBaseUser | None,
    model: BaseModel | None = None,
) -> StoreOutcome:
    """Store an uploaded file as a dataset and queue its validation.

    Content that is already stored (same SHA-256) is not stored again: the existing dataset
    is returned with ``created=False``. Raises ``UploadRejected`` for files that cannot be a
    dataset; nothing is left behind in that case.
    """
    incoming = upload
    if not isinstance(incoming, IncomingUpload):
        # E.g. a file Django spooled itself: copy it through the same checks, in chunks.
        incoming = incoming_from_chunks(
            upload.chunks(), name=upload.name or "", max_bytes=max_upload_bytes()
        )
    try:
        return _dataset_store(
            incoming,
            name=name.strip() or _stem(incoming.name or ""),
            description=description,
            tags=list(tags),
            original_filename=incoming.name or "",
            uploaded_by=uploaded_by,
            model=model or selectors.base_model_default(),
        )
    finally:
        incoming.close()


def _stem(file_name: str) -> str:
    return (file_name.rsplit(".", 1)[0] or file_name or "dataset")[:200]


def _dataset_store(
    incoming: IncomingUpload, *, model: BaseModel | None, **fields: Any
) -> StoreOutcome:
    existing = Dataset.objects.filter(sha256=incoming.sha256).first()
    if existing is not None:
        return StoreOutcome(existing, created=False)
    stored_name = default_storage.save(storage_name(incoming.sha256), incoming)
    try:
        with transaction.atomic():
            dataset = Dataset.objects.create(
                file=stored_name,
                size=incoming.size,
                sha256=incoming.sha256,
                line_count=incoming.line_count,
                line_index=incoming.line_index,
                status=Status.UPLOADED,
                progress_total=incoming.size,
                requested_model=model,
                **leases.queued_fields(),
                **fields,
            )
            _enqueue_validation(dataset.pk, model.pk if model else None)
    except IntegrityError:
        # Someone stored the same content a moment ago: theirs wins, ours goes.
        default_storage.delete(stored_name)
        existing = Dataset.objects.filter(sha256=incoming.sha256).first()
        if existing is None:
            raise
        return StoreOutcome(existing, created=False)
    except BaseException:
        default_storage.delete(stored_name)
        raise
    return StoreOutcome(dataset, created=True)


def _enqueue_validation(dataset_id: int, model_id: str | None) -> None:
    # robust: a broker outage must not turn a stored upload into an error page; the dataset
    # then stays "uploaded" and a member can start its validation from its page.
    queue.enqueue("datasets.tasks.dataset_validate", dataset_id, model_id, robust=True)


# --- validation ------------------------------------------------------------------------------


class ClaimLost(Exception):
    """Another request superseded this validation run."""


class ProgressPublisher:
    """The engine's progress callback: writes bytes done at most every ``every`` seconds,
    renewing the run's lease with them, and stops the run (``ClaimLost``) once another run or
    request has taken over."""

    def __init__(self, dataset_id: int, claim: uuid.UUID, every: float = PROGRESS_EVERY_SECONDS):
        self.dataset_id = dataset_id
        self.claim = claim
        self.every = every
        self.writes = 0
        self._last = time.monotonic()

    def __call__(self, bytes_done: int) -> None:
        now = time.monotonic()
        if now - self._last < self.every:
            return
        self._last = now
        self.writes += 1
        updated = Dataset.objects.filter(pk=self.dataset_id, claim=self.claim).update(
            progress_bytes=bytes_done, progress_at=timezone.now(), **leases.held_fields()
        )
        if not updated:
            raise ClaimLost


def dataset_validate(*, dataset_id: int, model_id: str | None) -> bool:
    """Validate the stored file for ``model_id`` and store the report.

    Safe to run twice: the run claims the dataset with a conditional UPDATE (only the task
    for the latest request, and only while nobody else is validating: a validation whose
    worker died, or whose lease ran out, is taken over), and every later write only lands
    while it still holds that claim. Returns whether a report was stored.
    """
    claim = uuid.uuid4()
    now = timezone.now()
    claimed = leases.lease_claim(
        Dataset.objects.filter(pk=dataset_id)
        .filter(Q(requested_model_id=model_id) if model_id else Q(requested_model__isnull=True))
        .filter(status__in=(Status.UPLOADED, Status.VALIDATING)),
        status=Status.VALIDATING,
        claim=claim,
        progress_bytes=0,
        progress_at=now,
        validation_started_at=now,
        error_message="",
    )
    if not claimed:
        return False
    dataset = Dataset.objects.select_related("requested_model").get(pk=dataset_id)
    spec = dataset.requested_model.to_spec() if dataset.requested_model else None
    try:
        with dataset.file.open("rb") as fh:
            report = validate_stream(
                fh,
                model=spec,
                total_bytes=dataset.size,
                progress=ProgressPublisher(dataset_id, claim),
                processes=settings.VALIDATION_PROCESSES,
                parallel_min_bytes=settings.VALIDATION_PARALLEL_MIN_MB << 20,
            )
    except ClaimLost:
        return False
    except TRANSIENT_ERRORS:
        _release_claim(dataset_id, claim)
        raise
    except Exception as exc:
        log.exception("validation of dataset %s failed", dataset_id)
        _fail(dataset_id, claim, exc)
        return False
    return _report_store(dataset_id, claim, report, model_id, size=dataset.size)


def _report_fields(report: Report) -> dict[str, Any]:
    """The columns a stored report sets: a dataset is usable ("valid") when at least one rule
    set accepts it; its format is the one the page shows first (the first rule set that
    accepts it, else the first that recognises it); ``validity`` keeps every rule set's
    verdict for the launch rules (``selectors.dataset_valid_for``)."""
    verdicts = report.verdicts()
    shown = report.shown_family(verdicts)
    return {
        "status": Status.VALID if any(v.valid for v in verdicts) else Status.INVALID,
        "report": report.to_dict(),
        "format": next(v.format for v in verdicts if v.family == shown),
        "validity": {
            v.family: {
                "valid": v.valid,
                "format": v.format,
                "methods": list(v.methods),
                "reason": v.reason,
            }
            for v in verdicts
            if v.checked
        },
        "n_examples": report.n_examples,
    }


def _report_store(
    dataset_id: int, claim: uuid.UUID, report: Report, model_id: str | None, *, size: int
) -> bool:
    updated = Dataset.objects.filter(pk=dataset_id, claim=claim).update(
        **_report_fields(report),
        report_model_id=model_id,
        progress_bytes=size,
        progress_at=timezone.now(),
        validated_at=timezone.now(),
        claim=None,
        **leases.done_fields(),
    )
    return bool(updated)


def _fail(dataset_id: int, claim: uuid.UUID, exc: BaseException) -> None:
    message = f"{type(exc).__name__}: {exc}"[:2000]
    if isinstance(exc, TokenizerError):
        # Not the user's file: say so, or people re-upload a good dataset again and again.
        message = f"The tokenizer could not be loaded, so no dataset can be validated: {exc}."
    elif isinstance(exc, OSError):
        message = f"The dataset file could not be read ({exc.strerror or exc})."
    elif isinstance(exc, SoftTimeLimitExceeded):
        message = "Validation took longer than the task time limit (CELERY_TASK_SOFT_TIME_LIMIT)."
    Dataset.objects.filter(pk=dataset_id, claim=claim).update(
        status=Status.ERROR,
        error_message=message,
        claim=None,
        progress_at=timezone.now(),
        **leases.done_fields(),
    )


def _release_claim(dataset_id: int, claim: uuid.UUID) -> None:
    # Best effort: with the database gone this fails too, and the retry takes the dataset
    # over from this session once the session is gone or the lease ran out.
    try:
        Dataset.objects.filter(pk=dataset_id, claim=claim).update(
            status=Status.UPLOADED, claim=None, **leases.queued_fields()
        )
    except TRANSIENT_ERRORS:
        pass


def dataset_validation_request(
    *, dataset: Dataset, model: BaseModel | None, force: bool = False
) -> str:
    """Validate ``dataset`` for ``model``: re-derive the stored report when it was counted
    with the same tokenizer ("recomputed"), otherwise — or with ``force`` — queue a
    validation run that reads the file ("queued")."""
    # ``force`` first: the report is deferred in some querysets and need not be loaded.
    if (
        not force
        and model is not None
        and dataset.status in (Status.VALID, Status.INVALID)
        and dataset.report
    ):
        stored = Report.from_dict(dataset.report)
        spec = model.to_spec()
        if can_recompute(stored, spec):
            report = recompute_for_model(stored, spec)
            updated = Dataset.objects.filter(
                pk=dataset.pk, status__in=(Status.VALID, Status.INVALID)
            ).update(
                **_report_fields(report),
                report_model=model,
                requested_model=model,
                validated_at=timezone.now(),
            )
            if updated:
                return "recomputed"
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk).update(
            status=Status.UPLOADED,
            requested_model=model,
            claim=None,
            progress_bytes=0,
            progress_total=dataset.size,
            progress_at=None,
            error_message="",
            **leases.queued_fields(),
        )
        _enqueue_validation(dataset.pk, model.pk if model else None)
    return "queued"


def base_model_reports_refresh(*, models: Sequence[BaseModel]) -> dict[str, int]:
    """Bring the stored reports made for ``models`` up to date after their prices or limits
    were edited: re-derived in place, or validated again when the encoding changed.
    Returns how many were "recomputed" and "queued"."""
    counts = {"recomputed": 0, "queued": 0}
    by_id = {m.pk: m for m in models}
    candidates = Dataset.objects.filter(
        report_model_id__in=list(by_id), status__in=(Status.VALID, Status.INVALID)
    ).only("id", "size", "report", "report_model_id", "status")
    for dataset in candidates.iterator(chunk_size=50):
        model = by_id[dataset.report_model_id]
        counts[dataset_validation_request(dataset=dataset, model=model)] += 1
    return counts


# --- derived datasets ------------------------------------------------------------------------

FLUSH_BYTES = 1 << 20
SPLIT_PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class DerivedPart:
    label: str
    outcome: StoreOutcome


@dataclass(frozen=True)
class _PartSpec:
    label: str
    name: str
    derivation: dict[str, Any]


def dataset_split(
    *,
    dataset: Dataset,
    fractions: dict[str, Fraction],
    seed: int,
    user: AbstractBaseUser | None,
) -> list[DerivedPart]:
    """Split the non-blank lines into parts ("train", "validation", optional "test") of
    exactly round(fraction × lines) lines (largest remainder), drawn with ``seed``."""
    labels = [label for label in SPLIT_PARTS if fractions.get(label)]
    if sum(fractions.get(label, Fraction(0)) for label in SPLIT_PARTS) != 1:
        raise DeriveRejected("The fractions must add up to 1.")
    units, oversized = _count_units(dataset)
    sizes = quotas(units, [fractions[label] for label in labels])
    empty = [label for label, size in zip(labels, sizes, strict=True) if size == 0]
    if empty:
        raise DeriveRejected(
            f"With {units:,} lines the {', '.join(empty)} part would be empty; "
            "choose larger fractions or a bigger dataset."
        )
    common = {
        "kind": "split",
        "fractions": {label: float(fractions.get(label, 0)) for label in SPLIT_PARTS},
        "seed": seed,
        "counts": dict(zip(labels, sizes, strict=True)),
        "source_sha256": dataset.sha256,
        "dropped_oversized_lines": oversized,
    }
    specs = [
        _PartSpec(label, f"{dataset.name} · {label}", {**common, "part": label}) for label in labels
    ]
    sampler = QuotaSampler(sizes, seed)
    return _derive(dataset, specs, lambda: sampler.draw(), user=user, limit=None)


def dataset_subset(
    *,
    dataset: Dataset,
    mode: str,
    n: int | None,
    fraction: Fraction | None,
    seed: int,
    user: AbstractBaseUser | None,
) -> DerivedPart:
    """One subset: the first ``n`` lines, ``n`` random lines, or a random ``fraction`` of
    the lines (rounded half up), drawn with ``seed`` and kept in file order."""
    units, oversized = _count_units(dataset)
    derivation: dict[str, Any] = {"kind": "subset", "mode": mode, "source_sha256": dataset.sha256}
    if mode == "fraction":
        if fraction is None or not 0 < fraction <= 1:
            raise DeriveRejected("Choose a fraction between 0 and 1.")
        n = round_half_up(fraction * units)
        derivation["fraction"] = float(fraction)
    if n is None or n < 1:
        raise DeriveRejected(f"The subset would be empty (the dataset has {units:,} lines).")
    if n > units:
        raise DeriveRejected(f"The dataset has only {units:,} lines; choose at most that many.")
    derivation |= {"n": n, "dropped_oversized_lines": oversized}
    if mode == "first":
        label, choose = f"first {n:,}", (lambda: 0)
    elif mode in ("random", "fraction"):
        derivation["seed"] = seed
        sampler = QuotaSampler([n, units - n], seed)
        label = f"random {n:,} (seed {seed})"
        if mode == "fraction":
            label = f"{float(fraction or 0):.0%} · {n:,} lines (seed {seed})"

        def choose() -> int | None:
            return 0 if sampler.draw() == 0 else None
    else:
        raise DeriveRejected(f"Unknown subset kind {mode!r}.")
    spec = _PartSpec("subset", f"{dataset.name} · {label}", derivation)
    (part,) = _derive(dataset, [spec], choose, user=user, limit=n)
    return part


def _count_units(dataset: Dataset) -> tuple[int, int]:
    with _open_source(dataset) as fh:
        return count_units(fh)


@contextmanager
def _open_source(dataset: Dataset) -> Iterator[BinaryIO]:
    try:
        fh = dataset.file.open("rb")
    except OSError as exc:
        raise DeriveRejected(
            f"The dataset file cannot be read ({exc.strerror or exc}); nothing was created."
        ) from None
    with fh:
        yield fh


def _derive(
    dataset: Dataset,
    specs: list[_PartSpec],
    choose: Callable[[], int | None],
    *,
    user: AbstractBaseUser | None,
    limit: int | None,
) -> list[DerivedPart]:
    uploads = _write_parts(dataset, specs, choose, limit)
    model = dataset.report_model or dataset.requested_model or selectors.base_model_default()
    stored: list[str] = []
    try:
        with transaction.atomic():
            parts = []
            for spec, upload in zip(specs, uploads, strict=True):
                outcome = _dataset_store(
                    upload,
                    model=model,
                    name=spec.name[:200],
                    description=f"Derived from “{dataset.name}” (#{dataset.pk}).",
                    tags=list(dataset.tags),
                    original_filename=upload.name or "",
                    uploaded_by=user,
                    parent=dataset,
                    derivation=spec.derivation,
                )
                if outcome.created:
                    stored.append(outcome.dataset.file.name)
                parts.append(DerivedPart(spec.label, outcome))
    except BaseException:
        for name in stored:
            default_storage.delete(name)
        raise
    finally:
        for upload in uploads:
            upload.close()
    return parts


def _write_parts(
    dataset: Dataset,
    specs: list[_PartSpec],
    choose: Callable[[], int | None],
    limit: int | None,
) -> list[IncomingUpload]:
    sinks = [IncomingFile(check_text=False) for _ in specs]
    buffers = [bytearray() for _ in specs]
    written = 0
    finished: list[IncomingUpload] = []
    try:
        with _open_source(dataset) as fh:
            for unit in iter_units(fh):
                if unit is None:
                    continue
                part = choose()
                if part is None:
                    continue
                buffer = buffers[part]
                buffer += unit
                buffer += b"\n"
                if len(buffer) >= FLUSH_BYTES:
                    sinks[part].write(bytes(buffer))
                    buffer.clear()
                written += 1
                if limit is not None and written >= limit:
                    break
        stem = _stem(dataset.original_filename or f"dataset-{dataset.pk}.jsonl")
        for spec, sink, buffer in zip(specs, sinks, buffers, strict=True):
            if buffer:
                sink.write(bytes(buffer))
            suffix = slugify(spec.name.rsplit(" · ", 1)[-1]) or spec.label
            finished.append(sink.finish(f"{stem[:150]}-{suffix[:80]}.jsonl"))
    except BaseException:
        for sink in sinks:
            sink.discard()
        for upload in finished:
            upload.close()
        raise
    return finished


# --- deletion --------------------------------------------------------------------------------


class DatasetInUse(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def dataset_delete(*, dataset: Dataset) -> None:
    """Delete the row, then the file once that is committed (derived datasets stay; their
    parent link clears). Raises ``DatasetInUse`` when other records (jobs) protect it."""
    name = dataset.file.name
    try:
        with transaction.atomic():
            dataset.delete()
            transaction.on_commit(lambda: default_storage.delete(name))
    except ProtectedError as exc:
        users = sorted({f"{type(o)._meta.verbose_name} {o.pk}" for o in exc.protected_objects})
        raise DatasetInUse(
            f"“{dataset.name}” is used by {', '.join(users[:5])}"
            f"{' and more' if len(users) > 5 else ''}; it was not deleted."
        ) from None
