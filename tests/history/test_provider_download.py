"""Streaming a provider file to a sink (``download_file_to``) against the sandbox over real
HTTP: same bytes as ``download_file`` in bounded chunks, retries before the first byte, errors
mapped as usual; and an import that refuses a file which is not a usable dataset."""

from __future__ import annotations

import io

import pytest

from jobs.history import import_now
from jobs.models import ImportedFile, Job
from jobs.providers import ConnectionConfig, NotFoundError, OpenAICompatibleProvider
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def provider(sandbox_url: str, sandbox_key: str):  # type: ignore[no-untyped-def]
    config = ConnectionConfig(
        kind="sandbox", base_url=sandbox_url, api_key=sandbox_key, max_retries=3,
        backoff_base=0.01, backoff_max=0.05,
    )  # fmt: skip
    with OpenAICompatibleProvider(config) as client:
        yield client


def test_streams_the_same_bytes_in_chunks(provider, sdk, sandbox) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(chat_examples(40))
    file_id = sdk.files.create(file=("a.jsonl", io.BytesIO(content)), purpose="fine-tune").id
    chunks: list[bytes] = []
    assert provider.download_file_to(file_id, chunks.append, chunk_size=1000) == len(content)
    assert b"".join(chunks) == content == provider.download_file(file_id)
    assert len(chunks) >= len(content) // 1000 and max(map(len, chunks)) <= 1000

    # A server error before any byte is retried like any other call.
    sandbox.control("faults", {"kinds": ["500"], "count": 1, "path": "/content$"})
    before = provider.request_count
    again: list[bytes] = []
    provider.download_file_to(file_id, again.append)
    assert b"".join(again) == content and provider.request_count - before == 2

    # The sink can stop the download; the client stays usable.
    def refuse(chunk: bytes) -> None:
        raise ValueError("enough")

    with pytest.raises(ValueError, match="enough"):
        provider.download_file_to(file_id, refuse, chunk_size=100)
    assert provider.download_file(file_id) == content

    sdk.files.delete(file_id)
    with pytest.raises(NotFoundError):
        provider.download_file_to(file_id, chunks.append)


def test_a_file_that_is_not_a_dataset_is_recorded_as_refused(sandbox_connection, sdk) -> None:  # type: ignore[no-untyped-def]
    binary = sdk.files.create(
        file=("blob.jsonl", io.BytesIO(b"\x00\x01\x02 not text" * 50)), purpose="fine-tune"
    ).id
    job_id = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=binary).id
    sdk.fine_tuning.jobs.retrieve(job_id)
    run = import_now(connection=sandbox_connection, user=None)
    assert run.status == "succeeded" and run.errors == 1 and run.files_downloaded == 0
    assert "NUL bytes" in run.last_error
    record = ImportedFile.objects.get(provider_file_id=binary)
    assert record.status == "rejected" and record.dataset is None and record.bytes == 600
    job = Job.objects.get(provider_job_id=job_id)
    assert job.status == "failed" and job.training_dataset is None
    # Asking again would change nothing: the second import does not download it again.
    again = import_now(connection=sandbox_connection, user=None)
    assert again.errors == 0 and ImportedFile.objects.count() == 1
