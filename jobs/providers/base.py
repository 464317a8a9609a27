"""The provider interface the rest of Tuneboard codes against. All calls are synchronous and
raise ``jobs.providers.errors.ProviderError`` subclasses on failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, runtime_checkable

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


@runtime_checkable
class Provider(Protocol):
    @property
    def request_count(self) -> int:
        """HTTP requests actually sent by this client, retries included."""
        ...

    def upload_file(
        self,
        *,
        filename: str,
        stream: BinaryIO,
        size: int,
        purpose: str = "fine-tune",
        sha256: str | None = None,
    ) -> FileInfo: ...

    def list_files(
        self, *, purpose: str | None = None, after: str | None = None, limit: int = 100
    ) -> Page[FileInfo]: ...

    def find_file(
        self,
        *,
        filename: str,
        size: int,
        purpose: str = "fine-tune",
        max_pages: int = ...,
        page_size: int = ...,
    ) -> FileInfo | None: ...

    def retrieve_file(self, file_id: str) -> FileInfo: ...

    def wait_for_file(
        self, file_id: str, *, timeout: float = 600, poll: float = 1.0
    ) -> FileInfo: ...

    def download_file(self, file_id: str) -> bytes: ...

    def download_file_to(
        self, file_id: str, write: Callable[[bytes], object], *, chunk_size: int = ...
    ) -> int: ...

    def download_results_csv(self, file_id: str) -> str: ...

    def create_job(self, spec: JobSpec, *, marker: str | None = None) -> JobInfo: ...

    def find_job(
        self,
        *,
        metadata_key: str,
        value: str,
        max_pages: int = ...,
        page_size: int = ...,
    ) -> JobInfo | None: ...

    def retrieve_job(self, job_id: str) -> JobInfo: ...

    def list_jobs(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        metadata: dict[str, str] | None = None,
    ) -> Page[JobInfo]: ...

    def list_events(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> Page[EventInfo]: ...

    def list_checkpoints(
        self, job_id: str, *, after: str | None = None, limit: int = 100
    ) -> Page[CheckpointInfo]: ...

    def list_metrics(self, job_id: str, *, after_step: int | None = None) -> list[dict[str, float]]:
        """Metric dictionaries from a provider that serves them apart from events and
        result files (``step`` and Tuneboard's series names), oldest first; [] otherwise."""
        ...

    def cancel_job(self, job_id: str) -> JobInfo: ...

    def pause_job(self, job_id: str) -> JobInfo: ...

    def resume_job(self, job_id: str) -> JobInfo: ...

    def delete_model(self, model: str) -> bool: ...

    def list_models(self) -> list[ModelInfo]: ...

    def model_limits(self, model: str) -> dict[str, Any]:
        """What the provider allows when fine-tuning ``model`` (empty: it does not say)."""
        ...

    def estimate_price(self, spec: JobSpec) -> dict[str, Any]:
        """The provider's own estimate of a job's price (``traits.quotes_price`` adapters)."""
        ...

    def retrieve_model(self, model: str) -> ModelInfo: ...

    def chat_completion(
        self,
        *,
        model: str,
        messages: list[dict[str, Any]],
        temperature: float | None = None,
        max_tokens: int | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> ChatResult: ...

    def close(self) -> None: ...
