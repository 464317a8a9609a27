from __future__ import annotations

import hashlib
import random
import time
from typing import Any

from django.conf import settings
from django.core.files.base import File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from core import outbound
from datasets.validation import TokenizerError
from sandbox import ids, training_data
from sandbox.api import ApiError, Caller, not_found
from sandbox.catalog import base_model, base_of
from sandbox.engine import hyperparameters_json
from sandbox.models import (
    SandboxAccount,
    SandboxCheckpoint,
    SandboxFault,
    SandboxFile,
    SandboxJob,
    SandboxModel,
    SandboxUpload,
    SandboxUploadPart,
)
from sandbox.requests import JobRequest, parse_expires_after, parse_mime_type
from sandbox.simulation import TrainingRun, TrainingSpec, resolve_hyperparameters

# As the spec's CreateFileRequest lists them. `evals` is missing from the response enum of the
# spec and the SDK: see serializers.file_json for how it is shown.
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision")
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_UPLOAD_BYTES = 8 * 1024**3
MAX_PART_BYTES = 64 * 1024 * 1024
UPLOAD_LIFETIME = 3600


def _now() -> int:
    return int(time.time())


def _expires_at(created_at: float, expires_after: int | None) -> int | None:
    # From the whole second shown as created_at, so that expires_at - created_at is exact.
    return None if expires_after is None else int(created_at) + expires_after


def _check_purpose_and_name(
    purpose: Any, filename: str, allowed: tuple[str, ...], param: str
) -> None:
    if purpose not in allowed:
        raise ApiError(
            400, f"'{purpose}' is not one of {list(allowed)} - 'purpose'", param="purpose"
        )
    if purpose == "fine-tune" and not filename.lower().endswith(".jsonl"):
        raise ApiError(
            400,
            f"Invalid file format for Fine-Tuning API. Must be .jsonl (got {filename!r}).",
            param=param,
        )


def file_create(
    *,
    caller: Caller,
    upload: UploadedFile | None,
    purpose: Any,
    expires_after: int | None,
) -> SandboxFile:
    if upload is None:
        raise ApiError(
            400,
            "Missing required parameter: 'file'.",
            param="file",
            code="missing_required_parameter",
        )
    filename = upload.name or "file"
    if len(filename) > 255:
        raise ApiError(
            400, "invalid file: the file name is longer than 255 characters", param="file"
        )
    _check_purpose_and_name(purpose, filename, FILE_PURPOSES, "file")
    if upload.size == 0:
        raise ApiError(400, "The file is empty.", param="file")
    if upload.size > MAX_FILE_BYTES:
        raise ApiError(
            400,
            "File is too large: the Files API accepts up to 512 MB; use the Uploads API.",
            param="file",
        )
    created_at = time.time()
    file = SandboxFile(
        id=ids.file_id(),
        owner=caller.owner,
        filename=filename,
        purpose=purpose,
        bytes=upload.size,
        created_at=created_at,
        expires_at=_expires_at(created_at, expires_after),
    )
    file.content.save(file.id, upload, save=False)
    file.save()
    return file


def check_file_name(*, purpose: Any, filename: str) -> None:
    """What a file of ``purpose`` named ``filename`` must be before any content is taken."""
    if not filename or len(filename) > 255:
        raise ApiError(400, "file_name must be 1 to 255 characters", param="file_name")
    _check_purpose_and_name(purpose, filename, FILE_PURPOSES, "file_name")


def file_store(
    *, file_id: str, owner: str, filename: str, purpose: str, content: File[Any]
) -> SandboxFile:
    """A file whose content arrives apart from the API call that named it (a presigned
    upload). Storing the same id twice keeps the first content."""
    existing = SandboxFile.objects.filter(pk=file_id).first()
    if existing is not None:
        return existing
    file = SandboxFile(
        id=file_id, owner=owner, filename=filename, purpose=purpose, bytes=0, created_at=time.time()
    )
    file.content.save(file_id, content, save=False)
    file.bytes = file.content.size
    if file.bytes == 0:
        file.content.delete(save=False)
        raise ApiError(400, "The file is empty.", param="file")
    if file.bytes > MAX_FILE_BYTES:
        file.content.delete(save=False)
        raise ApiError(400, "File is too large: up to 512 MB.", param="file")
    file.save()
    return file


def file_get(*, caller: Caller, file_id: str) -> SandboxFile:
    file = SandboxFile.objects.filter(pk=file_id, owner=caller.owner, deleted=False).first()
    if file is None or (file.expires_at is not None and file.expires_at < _now()):
        raise not_found("File", file_id)
    return file


def file_delete(*, caller: Caller, file_id: str) -> SandboxFile:
    file = file_get(caller=caller, file_id=file_id)
    SandboxFile.objects.filter(pk=file.pk).update(deleted=True)
    # Fine-tuned models keep answering like their training data after the file is deleted,
    # so training content stays on disk; other purposes are removed at once.
    if file.purpose != "fine-tune":
        file.content.delete(save=False)
    return file


# --- Uploads ----------------------------------------------------------------------------------


def upload_create(*, caller: Caller, body: dict[str, Any]) -> SandboxUpload:
    from sandbox.api import reject_unknown

    reject_unknown(body, ("bytes", "filename", "mime_type", "purpose", "expires_after"))
    expires_after = parse_expires_after(body.get("expires_after"))
    for field in ("bytes", "filename", "mime_type", "purpose"):
        if field not in body:
            raise ApiError(
                400,
                f"Missing required parameter: '{field}'.",
                param=field,
                code="missing_required_parameter",
            )
    total = body["bytes"]
    if not isinstance(total, int) or isinstance(total, bool) or not 1 <= total <= MAX_UPLOAD_BYTES:
        raise ApiError(400, "invalid bytes: an integer from 1 to 8 GB", param="bytes")
    for field in ("filename", "purpose"):
        if not isinstance(body[field], str) or not 0 < len(body[field]) <= 255:
            raise ApiError(400, f"invalid {field}: a string of 1 to 255 characters", param=field)
    mime_type = parse_mime_type(body["mime_type"])
    filename = body["filename"]
    _check_purpose_and_name(body["purpose"], filename, UPLOAD_PURPOSES, "filename")
    now = _now()
    return SandboxUpload.objects.create(
        id=ids.upload_id(),
        owner=caller.owner,
        filename=filename,
        purpose=body["purpose"],
        mime_type=mime_type,
        bytes=total,
        created_at=now,
        expires_at=now + UPLOAD_LIFETIME,
        file_expires_after=expires_after,
    )


def upload_get(*, caller: Caller, upload_id: str, lock: bool = False) -> SandboxUpload:
    queryset = SandboxUpload.objects.select_for_update() if lock else SandboxUpload.objects
    upload = queryset.filter(pk=upload_id, owner=caller.owner).first()
    if upload is None:
        raise not_found("Upload", upload_id, param="upload_id")
    if upload.status == "pending" and upload.expires_at < _now():
        upload.status = "expired"
        SandboxUpload.objects.filter(pk=upload.pk).update(status="expired")
    return upload


def _require_pending(upload: SandboxUpload) -> None:
    if upload.status != "pending":
        raise ApiError(
            400,
            f"Upload {upload.id} is {upload.status}; it no longer accepts changes.",
            param="upload_id",
        )


def upload_part_add(
    *, caller: Caller, upload_id: str, data: UploadedFile | None
) -> SandboxUploadPart:
    upload = upload_get(caller=caller, upload_id=upload_id)
    _require_pending(upload)
    if data is None:
        raise ApiError(
            400,
            "Missing required parameter: 'data'.",
            param="data",
            code="missing_required_parameter",
        )
    if data.size > MAX_PART_BYTES:
        raise ApiError(400, "Part is too large: at most 64 MB per part.", param="data")
    part = SandboxUploadPart(id=ids.part_id(), upload=upload, created_at=_now(), size=data.size)
    part.content.save(part.id, data, save=False)
    part.save()
    return part


def upload_complete(*, caller: Caller, upload_id: str, body: dict[str, Any]) -> SandboxUpload:
    from sandbox.api import reject_unknown

    reject_unknown(body, ("part_ids", "md5"))
    part_ids = body.get("part_ids")
    if (
        not isinstance(part_ids, list)
        or not part_ids
        or not all(isinstance(p, str) for p in part_ids)
    ):
        raise ApiError(400, "invalid part_ids: a non-empty list of part ids", param="part_ids")
    if len(set(part_ids)) != len(part_ids):
        raise ApiError(400, "invalid part_ids: a part is listed twice", param="part_ids")
    with transaction.atomic():
        upload = upload_get(caller=caller, upload_id=upload_id, lock=True)
        _require_pending(upload)
        parts = {p.id: p for p in upload.parts.filter(pk__in=part_ids)}
        missing = [p for p in part_ids if p not in parts]
        if missing:
            raise ApiError(
                400,
                f"invalid part_ids: {missing[0]} is not a part of this upload",
                param="part_ids",
            )
        total = sum(parts[p].size for p in part_ids)
        if total != upload.bytes:
            raise ApiError(
                400,
                f"The parts add up to {total} bytes but the upload was created with bytes={upload.bytes}.",
                param="bytes",
            )
        digest = hashlib.md5()  # noqa: S324 - OpenAI's checksum, not security
        created_at = time.time()
        file = SandboxFile(
            id=ids.file_id(), owner=caller.owner, filename=upload.filename, purpose=upload.purpose,
            bytes=total, created_at=created_at,
            expires_at=_expires_at(created_at, upload.file_expires_after),
        )  # fmt: skip
        file.content.save(
            file.id, File(_Concatenated([parts[p] for p in part_ids], digest)), save=False
        )
        md5 = body.get("md5")
        if md5 and md5.lower() != digest.hexdigest():
            file.content.delete(save=False)
            raise ApiError(400, "The md5 checksum does not match the uploaded bytes.", param="md5")
        file.save()
        upload.status = "completed"
        upload.file = file
        upload.save(update_fields=["status", "file"])
    for part in parts.values():
        part.content.delete(save=False)
    return upload


class _Concatenated:
    """A read-only stream over the parts in order, hashing as it goes (bounded memory)."""

    def __init__(self, parts: list[SandboxUploadPart], digest: Any) -> None:
        self._parts = list(parts)
        self._current: Any = None
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        chunks = []
        remaining = size
        while remaining != 0:
            if self._current is None:
                if not self._parts:
                    break
                self._current = self._parts.pop(0).content.open("rb")
            chunk = self._current.read(remaining if remaining > 0 else -1)
            if not chunk:
                self._current.close()
                self._current = None
                continue
            chunks.append(chunk)
            if remaining > 0:
                remaining -= len(chunk)
        data = b"".join(chunks)
        self._digest.update(data)
        return data


def upload_cancel(*, caller: Caller, upload_id: str) -> SandboxUpload:
    with transaction.atomic():
        upload = upload_get(caller=caller, upload_id=upload_id, lock=True)
        _require_pending(upload)
        upload.status = "cancelled"
        upload.save(update_fields=["status"])
    for part in upload.parts.all():
        part.content.delete(save=False)
    return upload


# --- Jobs -------------------------------------------------------------------------------------


def _training_source(caller: Caller, file_id: str, param: str) -> SandboxFile:
    file = SandboxFile.objects.filter(pk=file_id, owner=caller.owner, deleted=False).first()
    if file is None:
        raise ApiError(
            400,
            f"invalid {param}: No such File object: {file_id}",
            param=param,
            code="file_not_found",
        )
    if file.purpose != "fine-tune":
        raise ApiError(
            400,
            f"invalid {param}: File {file_id} has purpose '{file.purpose}'; fine-tuning needs 'fine-tune'.",
            param=param,
            code="invalid_file_purpose",
        )
    return file


def _resolve_model(caller: Caller, name: str, method: str) -> str:
    base = base_model(name)
    owned = SandboxModel.objects.filter(pk=name, owner=caller.owner, deleted=False)
    tuned_base = base_model(base_of(name)) if base is None and name.startswith("ft:") else None
    if tuned_base is not None and owned.exists():
        # Continue training a fine-tuned model: its base decides what is supported.
        if method == "dpo" and not tuned_base.dpo:
            raise ApiError(400, f"Model {name} does not support DPO fine-tuning.", param="model")
        return name
    if base is None or not base.fine_tunable:
        raise ApiError(
            400,
            f"Model {name} is not available for fine-tuning or does not exist.",
            param="model",
            code="model_not_available",
        )
    if method == "dpo" and not base.dpo:
        raise ApiError(400, f"Model {base.id} does not support DPO fine-tuning.", param="model")
    return base.id


def _speed(metadata: dict[str, str] | None) -> float:
    # Tests and demos can give one job its own pace through metadata.
    raw = (metadata or {}).get("sandbox_seconds_per_step")
    if raw is not None:
        try:
            value = float(raw)
        except ValueError:
            raise ApiError(
                400,
                "invalid metadata.sandbox_seconds_per_step: expected a number",
                param="metadata",
            ) from None
        if value < 0 or value > 3600:
            raise ApiError(
                400, "invalid metadata.sandbox_seconds_per_step: 0 to 3600", param="metadata"
            )
        return value
    return settings.SANDBOX_SECONDS_PER_STEP


def _analyze(
    file: SandboxFile, *, model: str, method: str, api: str = "openai"
) -> training_data.DataFacts:
    try:
        return training_data.analyze(file, model=model, method=method, rules=api)
    except TokenizerError as exc:
        # The server's fault, not the file's: an API error a client can retry, never a 500 page.
        raise ApiError(503, f"The sandbox cannot count tokens: {exc}", type="server_error") from exc


def job_create(
    *,
    caller: Caller,
    request: JobRequest,
    api: str = "openai",
    model: str | None = None,
    provider_params: dict[str, Any] | None = None,
    job_id: str | None = None,
) -> SandboxJob:
    """A job on the shared engine; another surface (``api``) passes the ``model`` it has
    resolved from its own catalog and what only it knows in ``provider_params``."""
    model = model or _resolve_model(caller, request.model, request.method)
    training = _training_source(caller, request.training_file, "training_file")
    validation = (
        _training_source(caller, request.validation_file, "validation_file")
        if request.validation_file
        else None
    )
    facts = _analyze(training, model=model, method=request.method, api=api)
    valid_facts = (
        _analyze(validation, model=model, method=request.method, api=api) if validation else None
    )
    failure = None
    if facts.error:
        failure = {
            "code": "invalid_training_file",
            "param": "training_file",
            "message": training_data.INVALID_FILE_PREFIX + facts.error,
        }
    elif valid_facts and valid_facts.error:
        failure = {
            "code": "invalid_validation_file",
            "param": "validation_file",
            "message": "The job failed due to an invalid validation file. " + valid_facts.error,
        }
    seed = request.seed if request.seed is not None else random.randint(0, 2_147_483_647)  # noqa: S311
    hp = resolve_hyperparameters(
        request.hyperparameters, n_examples=max(1, facts.n_examples), method=request.method
    )
    run = TrainingRun(
        TrainingSpec(
            method=request.method,
            n_examples=max(1, facts.n_examples),
            n_valid_examples=valid_facts.n_examples if valid_facts else 0,
            tokens_per_epoch=facts.tokens_per_epoch,
            seed=seed,
            model=base_of(model),
        ),
        hp,
    )
    speed = _speed(request.metadata)
    phase = min(3.0, 10 * speed)
    return SandboxJob.objects.create(
        id=job_id or ids.job_id(),
        owner=caller.owner,
        organization_id=caller.organization_id,
        model=model,
        training_file=training.id,
        validation_file=validation.id if validation else None,
        method_type=request.method,
        requested_hyperparameters=request.hyperparameters,
        hyperparameters=hyperparameters_json(hp, request.method),
        suffix=request.suffix,
        seed=seed,
        metadata=request.metadata,
        integrations=request.integrations,
        created_at=time.time(),
        validate_seconds=phase,
        queue_seconds=phase,
        seconds_per_step=speed,
        n_examples=facts.n_examples,
        n_valid_examples=valid_facts.n_examples if valid_facts else 0,
        tokens_per_epoch=facts.tokens_per_epoch,
        total_steps=run.total_steps,
        failure=failure,
        api=api,
        provider_params=provider_params or {},
    )


def model_delete(*, caller: Caller, model_id: str) -> None:
    if base_model(model_id) is not None:
        raise ApiError(
            403, "You have insufficient permissions for this operation: base models cannot be deleted.",
            type="invalid_request_error", param="model", code="insufficient_permissions",
        )  # fmt: skip
    updated = SandboxModel.objects.filter(pk=model_id, owner=caller.owner, deleted=False).update(
        deleted=True
    )
    if not updated:
        # A checkpoint's model: gone from its job's checkpoint list and from chat, as when
        # it is pruned (only the last three epochs' are kept).
        updated, _ = SandboxCheckpoint.objects.filter(
            fine_tuned_model_checkpoint=model_id, job__owner=caller.owner
        ).delete()
    if not updated:
        raise ApiError(
            404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
        )


# --- Control ----------------------------------------------------------------------------------


def fault_create(*, caller: Caller, body: dict[str, Any]) -> SandboxFault:
    from sandbox.api import reject_unknown

    reject_unknown(body, ("kinds", "kind", "count", "rate", "path", "retry_after", "hang_seconds"))
    kinds = body.get("kinds") or ([body["kind"]] if "kind" in body else None)
    valid = set(SandboxFault.Kind.values)
    if not isinstance(kinds, list) or not kinds or not all(k in valid for k in kinds):
        raise ApiError(400, f"invalid kinds: a non-empty list of {sorted(valid)}", param="kinds")
    count = body.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ApiError(400, "invalid count: a positive integer (omit for no limit)", param="count")
    rate = body.get("rate", 1.0)
    if not isinstance(rate, int | float) or not 0 < rate <= 1:
        raise ApiError(400, "invalid rate: a number in (0, 1]", param="rate")
    path = body.get("path") or ""
    try:
        import re

        re.compile(path)
    except re.error:
        raise ApiError(400, "invalid path: not a regular expression", param="path") from None
    return SandboxFault.objects.create(
        owner=caller.owner,
        kinds=kinds,
        remaining=count,
        rate=float(rate),
        path_regex=path,
        retry_after=float(body.get("retry_after", 1)),
        hang_seconds=float(body.get("hang_seconds", 30)),
    )


def faults_clear(*, caller: Caller) -> int:
    deleted, _ = SandboxFault.objects.filter(owner=caller.owner).delete()
    return deleted


def account_update(*, caller: Caller, body: dict[str, Any]) -> SandboxAccount:
    from sandbox.api import reject_unknown

    reject_unknown(body, ("profile", "webhook_url", "webhook_secret", "rate_limit"))
    account = caller.account
    if "profile" in body:
        if body["profile"] not in SandboxAccount.Profile.values:
            raise ApiError(
                400, f"invalid profile: one of {SandboxAccount.Profile.values}", param="profile"
            )
        account.profile = body["profile"]
    if "webhook_url" in body:
        url = body["webhook_url"] or ""
        if not isinstance(url, str) or (url and not url.startswith(("http://", "https://"))):
            raise ApiError(400, "invalid webhook_url: an http(s) URL", param="webhook_url")
        if len(url) > SandboxAccount._meta.get_field("webhook_url").max_length:
            raise ApiError(400, "invalid webhook_url: at most 500 characters", param="webhook_url")
        if url:
            try:
                outbound.check_url(url)
            except outbound.UnsafeURL as exc:
                raise ApiError(400, f"invalid webhook_url: {exc}", param="webhook_url") from None
        account.webhook_url = url
    if "webhook_secret" in body:
        account.webhook_secret = body["webhook_secret"] or ""
    if "rate_limit" in body:
        limit = body["rate_limit"]
        if limit is not None and (
            not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= 10**9
        ):
            raise ApiError(
                400,
                "invalid rate_limit: requests per window, 0 for none, null for the default",
                param="rate_limit",
            )
        account.rate_limit = limit
    account.save()
    return account
