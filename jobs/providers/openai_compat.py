"""The adapter for OpenAI's REST API and everything compatible with it: OpenAI itself, Azure
OpenAI's v1 surface and Tuneboard's sandbox. Differences between them (auth header,
``api-version``) are settled in ``http.build_client``; this module maps endpoints to records.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Callable
from typing import Any, BinaryIO

from jobs.providers import parameters, uploads
from jobs.providers.config import ConnectionConfig
from jobs.providers.errors import OutcomeUnknownError, ProviderError
from jobs.providers.http import HttpSession
from jobs.providers.records import (
    ChatResult,
    CheckpointInfo,
    EventInfo,
    FileInfo,
    JobInfo,
    JobSpec,
    ModelInfo,
    Page,
)
from jobs.providers.retry import backoff_seconds

log = logging.getLogger("jobs.providers")

FILE_DONE_STATUSES = frozenset({"processed", "error", "deleted"})
MAX_PAGE_LIMIT = 100  # the API's cap for jobs and checkpoints
# How far a lookup by metadata pages. A provider that honours the filter answers one short
# page; one that ignores it lists every job, newest first, and a job created moments ago is
# on the first page: ten pages of 100 bound the cost without missing it.
FIND_MAX_PAGES = 10


_segment = uploads.segment


def job_body(spec: JobSpec) -> dict[str, Any]:
    """The modern create body: ``method: {type, <type>: {hyperparameters}}``.

    ``"auto"`` and None hyperparameters are left out: the provider then chooses, exactly
    what "auto" asks for, and older deployments that reject "auto" for some keys still work.
    """
    hyperparameters = {
        key: value
        for key, value in spec.hyperparameters.items()
        if value is not None and value != "auto"
    }
    method: dict[str, Any] = {"type": spec.method}
    if hyperparameters:
        method[spec.method] = {"hyperparameters": hyperparameters}
    body: dict[str, Any] = {
        "model": spec.model,
        "training_file": spec.training_file,
        "method": method,
    }
    optional = {
        "validation_file": spec.validation_file,
        "suffix": spec.suffix,
        "seed": spec.seed,
        "metadata": spec.metadata,
        "integrations": spec.integrations,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def decode_results_csv(content: bytes) -> str:
    """Results files come as plain CSV or, from the real API, base64 of it (§5)."""
    stripped = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not stripped.startswith(b"step"):
        try:
            stripped = base64.b64decode(b"".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError):
            pass  # not base64 either: hand back the text as it is
        stripped = stripped.lstrip(b"\xef\xbb\xbf")
    return stripped.decode("utf-8", errors="replace")


def _page(body: Any, parse: Callable[[dict[str, Any]], Any], limit: int) -> Page[Any]:
    items = body.get("data") if isinstance(body, dict) else None
    data = (
        [parse(item) for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    )
    has_more = body.get("has_more") if isinstance(body, dict) else None
    if not isinstance(has_more, bool):
        # Older list endpoints omitted has_more; a full page may have a successor.
        has_more = bool(data) and len(data) >= limit
    return Page(data=data, has_more=has_more)


class OpenAICompatibleProvider(uploads.FileClient):
    file_done_statuses = FILE_DONE_STATUSES
    """One connection's client. Thread-safe: httpx's pooled client may be shared."""

    traits = parameters.Traits(
        family="openai",
        label="OpenAI-compatible",
        parameters=parameters.OPENAI,
        refreshes_catalog=False,  # Tuneboard's catalog (datasets.BaseModel) is edited by admins
        quotes_price=False,
        suffix_max=64,  # OpenAI's documented limit (datasets.validation.provider_limits)
        exact_token_counts=True,
        continues_fine_tuned=True,
        wandb_integration=True,
    )

    @staticmethod
    def parameters_for(
        limits: dict[str, Any], *, method: str, training_type: str
    ) -> tuple[parameters.Parameter, ...]:
        return parameters.OPENAI

    def __init__(
        self,
        config: ConnectionConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        multipart_threshold: int = uploads.MULTIPART_THRESHOLD,
        part_size: int = uploads.PART_SIZE,
    ) -> None:
        super().__init__(config, sleep=sleep)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size

    def __repr__(self) -> str:
        return f"<OpenAICompatibleProvider {self.config.kind} {self.config.base_url}>"

    # --- Files ---------------------------------------------------------------------------

    def upload_file(
        self,
        *,
        filename: str,
        stream: BinaryIO,
        size: int,
        purpose: str = "fine-tune",
        sha256: str | None = None,
    ) -> FileInfo:
        """Send the file; with the content's ``sha256``, never twice.

        With ``sha256`` the file is stored as ``uploads.content_filename(filename, sha256)``
        and an upload whose outcome is unknown is followed by a lookup of a file of that name
        and size, adopted when found (see ``jobs.providers.uploads``)."""
        filename, lookup = uploads.marked(
            filename, sha256=sha256, size=size, purpose=purpose, find=self.find_file
        )

        if size > self.multipart_threshold:
            return uploads.upload_in_parts(
                self._session,
                filename=filename,
                stream=stream,
                size=size,
                purpose=purpose,
                part_size=self.part_size,
                lookup=lookup,
            )
        return uploads.upload_single(
            self._session,
            filename=filename,
            stream=stream,
            size=size,
            purpose=purpose,
            lookup=lookup,
        )

    def list_files(
        self, *, purpose: str | None = None, after: str | None = None, limit: int = 100
    ) -> Page[FileInfo]:
        """One page of the provider's files, newest first."""
        return uploads.list_files(self._session, purpose=purpose, after=after, limit=limit)

    def find_file(
        self,
        *,
        filename: str,
        size: int,
        purpose: str = "fine-tune",
        max_pages: int = uploads.FIND_FILE_MAX_PAGES,
        page_size: int = uploads.FIND_FILE_PAGE_SIZE,
    ) -> FileInfo | None:
        return uploads.find_file(
            self._session,
            filename=filename,
            size=size,
            purpose=purpose,
            max_pages=max_pages,
            page_size=page_size,
        )

    def retrieve_file(self, file_id: str) -> FileInfo:
        return FileInfo.from_api(self._session.json("GET", f"files/{_segment(file_id)}"))

    def download_results_csv(self, file_id: str) -> str:
        return decode_results_csv(self.download_file(file_id))

    # --- Jobs ----------------------------------------------------------------------------

    def create_job(self, spec: JobSpec, *, marker: str | None = None) -> JobInfo:
        """Create the job; never twice.

        A create is not sent again after a failure that may have come after the provider
        made the job (a dropped connection, a read timeout, a 5xx): each extra job trains and
        bills. With ``marker``, the metadata key of ``spec.metadata`` whose value names this
        create (the Tuneboard job id), such a failure is followed by a lookup of the job by
        that value, and the create is sent again only when the provider does not have it, at
        most ``max_retries`` times. Without a marker such a failure raises
        ``OutcomeUnknownError`` for the caller to resolve.
        """
        value = (spec.metadata or {}).get(marker) if marker is not None else None
        if marker is not None and not value:
            raise ValueError(f"spec.metadata has no value for the marker {marker!r}")
        attempt = 0
        while True:
            try:
                return self._create_job_once(spec)
            except OutcomeUnknownError as exc:
                if marker is None or value is None or attempt >= self.config.max_retries:
                    raise
                log.info("create of job %s=%s may have happened (%s): looking", marker, value, exc)
            # Give the provider a moment (at least one backoff base, jitter may draw ~0): a job
            # made just now must be listed before we look for it.
            delay = backoff_seconds(
                attempt,
                base=self.config.backoff_base,
                maximum=self.config.backoff_max,
                rng=self._session.rng,
            )
            self._sleep(max(self.config.backoff_base, delay))
            attempt += 1
            found = self.find_job(metadata_key=marker, value=value)
            if found is not None:
                return found
            log.info("job %s=%s was not created: creating it again", marker, value)

    def _create_job_once(self, spec: JobSpec) -> JobInfo:
        response = self._session.request(
            "POST", "fine_tuning/jobs", json=job_body(spec), idempotent=False
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        # A success we cannot read still made the job: as uncertain as a lost answer.
        info = JobInfo.from_api(body) if isinstance(body, dict) else None
        if info is None or not info.id:
            raise OutcomeUnknownError(
                "The provider answered the job create with something that is not a job",
                status=response.status_code,
            )
        return info

    def find_job(
        self,
        *,
        metadata_key: str,
        value: str,
        max_pages: int = FIND_MAX_PAGES,
        page_size: int = MAX_PAGE_LIMIT,
    ) -> JobInfo | None:
        """The newest job whose own metadata holds ``metadata_key: value``, or None.

        The provider is asked to filter on that metadata, and every listed job's value is
        still checked: a provider (or a proxy) that ignores the filter lists other jobs, and
        none of them may be taken for this one. Pages on while the provider has more, at most
        ``max_pages``, and stops when a page brings no job not seen before (a cursor that
        does not move).
        """
        seen: set[str] = set()
        after: str | None = None
        for _ in range(max_pages):
            page = self.list_jobs(after=after, limit=page_size, metadata={metadata_key: value})
            for info in page.data:
                if (info.metadata or {}).get(metadata_key) == value:
                    return info
            fresh = {info.id for info in page.data} - seen
            seen |= fresh
            if not page.has_more or not fresh:
                return None
            after = page.last_id
        log.warning(
            "no job with %s=%s in the first %d pages: the provider seems to ignore the filter",
            metadata_key, value, max_pages,
        )  # fmt: skip
        return None

    def retrieve_job(self, job_id: str) -> JobInfo:
        return JobInfo.from_api(self._session.json("GET", f"fine_tuning/jobs/{_segment(job_id)}"))

    def list_jobs(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        metadata: dict[str, str] | None = None,
    ) -> Page[JobInfo]:
        limit = max(1, min(limit, MAX_PAGE_LIMIT))
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        for key, value in (metadata or {}).items():
            params[f"metadata[{key}]"] = value
        body = self._session.json("GET", "fine_tuning/jobs", params=params)
        return _page(body, JobInfo.from_api, limit)

    def list_events(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> Page[EventInfo]:
        return self._list(f"fine_tuning/jobs/{_segment(job_id)}/events", EventInfo, after, limit)

    def list_checkpoints(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> Page[CheckpointInfo]:
        limit = min(limit, MAX_PAGE_LIMIT)
        return self._list(
            f"fine_tuning/jobs/{_segment(job_id)}/checkpoints", CheckpointInfo, after, limit
        )

    def _list(self, path: str, record: Any, after: str | None, limit: int) -> Page[Any]:
        limit = max(1, limit)
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        return _page(self._session.json("GET", path, params=params), record.from_api, limit)

    def cancel_job(self, job_id: str) -> JobInfo:
        return self._job_action(job_id, "cancel")

    def pause_job(self, job_id: str) -> JobInfo:
        return self._job_action(job_id, "pause")

    def resume_job(self, job_id: str) -> JobInfo:
        return self._job_action(job_id, "resume")

    def _job_action(self, job_id: str, action: str) -> JobInfo:
        body = self._session.json(
            "POST", f"fine_tuning/jobs/{_segment(job_id)}/{action}", empty_json_body=True
        )
        return JobInfo.from_api(body)

    # --- Models --------------------------------------------------------------------------

    def delete_model(self, model: str) -> bool:
        body = self._session.json("DELETE", f"models/{_segment(model)}")
        return bool(body.get("deleted")) if isinstance(body, dict) else False

    def list_models(self) -> list[ModelInfo]:
        body = self._session.json("GET", "models")
        items = body.get("data") if isinstance(body, dict) else None
        return [ModelInfo.from_api(m) for m in items or [] if isinstance(m, dict)]

    def model_limits(self, model: str) -> dict[str, Any]:
        return {}  # OpenAI's API publishes no per-model limits: its documented ones apply

    def estimate_price(self, spec: JobSpec) -> dict[str, Any]:
        # OpenAI's API has no price estimate (``traits.quotes_price`` is False, so nothing
        # asks); answered in Together's words for "no estimate".
        return {"estimation_available": False}

    def retrieve_model(self, model: str) -> ModelInfo:
        # NotFoundError (404) when the provider no longer serves it (deleted, or a pruned
        # checkpoint).
        body = self._session.json("GET", f"models/{_segment(model)}")
        return ModelInfo.from_api(body if isinstance(body, dict) else {})

    def chat_completion(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ChatResult:
        return send_chat_completion(
            self._session,
            model=model,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            extra=extra,
        )

    def list_metrics(self, job_id: str, *, after_step: int | None = None) -> list[dict[str, float]]:
        """None here: OpenAI reports metrics in the job's events and its results file."""
        return []


def send_chat_completion(
    session: HttpSession,
    *,
    model: str,
    messages: list[dict[str, Any]],
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
    extra: dict[str, Any] | None = None,
) -> ChatResult:
    body: dict[str, Any] = {"model": model, "messages": messages}
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        # max_tokens is deprecated upstream and refused by reasoning models; servers that
        # only know the old name can get it through ``extra``.
        body["max_completion_tokens"] = max_tokens
    if seed is not None:
        body["seed"] = seed
    body.update(extra or {})
    started = [0.0]

    def mark() -> None:
        started[0] = time.monotonic()

    # Latency of the attempt that answered: retries and backoff are not the model's time.
    response = session.request("POST", "chat/completions", json=body, on_attempt=mark)
    latency = time.monotonic() - started[0]
    try:
        payload = response.json()
    except ValueError as exc:
        raise ProviderError(
            "The provider answered a chat completion with something that is not JSON",
            status=response.status_code,
        ) from exc
    return ChatResult.from_api(
        payload if isinstance(payload, dict) else {}, latency_seconds=latency
    )
