"""The whole fine-tuning workflow through the provider client, over real HTTP to the sandbox."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from jobs.providers import (
    BadRequestError,
    CheckpointInfo,
    EventInfo,
    JobSpec,
    NotFoundError,
    OpenAICompatibleProvider,
    TransientProviderError,
)
from tests.providers.conftest import record_requests, upload_bytes, wait_for_status
from tests.sandbox.data import chat_examples, dpo_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


class OneWayStream(io.RawIOBase):
    """A stream that can only be read forward, like a socket or a pipe."""

    def __init__(self, content: bytes) -> None:
        self._inner = io.BytesIO(content)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


# --- Files ------------------------------------------------------------------------------------


def test_small_file_goes_to_the_files_api(provider: OpenAICompatibleProvider) -> None:
    content = jsonl(chat_examples(15))
    sent = record_requests(provider)
    before = provider.request_count
    info = provider.upload_file(
        filename="small.jsonl", stream=io.BytesIO(content), size=len(content)
    )
    assert provider.request_count - before == 1
    assert [(r.method, r.url.path) for r in sent] == [("POST", "/sandbox/v1/files")]
    assert sent[0].headers["content-length"]  # streamed with a known length, not chunked
    assert info.id.startswith("file-") and info.bytes == len(content)
    assert (info.filename, info.purpose) == ("small.jsonl", "fine-tune")
    assert isinstance(info.created_at, int)
    assert provider.wait_for_file(info.id, timeout=5, poll=0.05).status == "processed"
    assert provider.retrieve_file(info.id) == provider.wait_for_file(info.id)
    assert provider.download_file(info.id) == content


def test_one_way_stream_to_the_files_api(provider: OpenAICompatibleProvider, inject) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(chat_examples(15))
    info = provider.upload_file(
        filename="pipe.jsonl", stream=OneWayStream(content), size=len(content)
    )
    assert provider.download_file(info.id) == content
    # Bytes already sent from a one-way stream cannot be sent again: no blind retry.
    inject(kinds=["drop"], count=1, path="/files$")
    before = provider.request_count
    with pytest.raises(TransientProviderError):
        provider.upload_file(filename="pipe.jsonl", stream=OneWayStream(content), size=len(content))
    assert provider.request_count - before == 1
    # A seekable stream is simply sent again.
    inject(kinds=["drop"], count=1, path="/files$")
    before = provider.request_count
    info = provider.upload_file(filename="f.jsonl", stream=io.BytesIO(content), size=len(content))
    assert provider.request_count - before == 2
    assert provider.download_file(info.id) == content


def test_stream_shorter_than_declared_size_is_refused(provider: OpenAICompatibleProvider) -> None:
    with pytest.raises(ValueError, match="ended after 10 bytes"):
        provider.upload_file(filename="short.jsonl", stream=io.BytesIO(b"0123456789"), size=20)
    assert provider.request_count == 1


@pytest.mark.parametrize("stream_kind", ["seekable", "one-way"])
def test_large_file_goes_through_the_uploads_api_in_parts(make_provider, stream_kind: str) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(chat_examples(2000))  # ~300 KB: five parts of 64 KB and a remainder
    part_size = 64 * 1024
    provider = make_provider(adapter={"multipart_threshold": 1000, "part_size": part_size})
    sent = record_requests(provider)
    stream = io.BytesIO(content) if stream_kind == "seekable" else OneWayStream(content)
    info = provider.upload_file(filename="big.jsonl", stream=stream, size=len(content))
    paths = [r.url.path.removeprefix("/sandbox/v1/") for r in sent]
    n_parts = -(-len(content) // part_size)
    assert n_parts >= 4
    assert paths[0] == "uploads" and paths[-1].endswith("/complete")
    assert sum(p.endswith("/parts") for p in paths) == n_parts
    complete = json.loads(sent[-1].content)
    assert complete["md5"] == hashlib.md5(content).hexdigest()  # noqa: S324
    assert len(complete["part_ids"]) == n_parts
    assert json.loads(sent[0].content) == {
        "bytes": len(content),
        "filename": "big.jsonl",
        "mime_type": "text/jsonl",
        "purpose": "fine-tune",
    }
    assert info.id.startswith("file-") and info.bytes == len(content)
    assert provider.download_file(info.id) == content  # byte-identical, parts in order


def test_a_part_is_resent_after_a_dropped_connection(make_provider, inject) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(chat_examples(600))
    provider = make_provider(adapter={"multipart_threshold": 1000, "part_size": 32 * 1024})
    inject(kinds=["drop"], count=1, path="/parts$")
    before = provider.request_count
    info = provider.upload_file(filename="d.jsonl", stream=io.BytesIO(content), size=len(content))
    n_parts = -(-len(content) // (32 * 1024))
    assert provider.request_count - before == n_parts + 3  # create, parts, one resend, complete
    # The sandbox checks the MD5 we sent: the replayed part was hashed once, not twice.
    assert provider.download_file(info.id) == content


# --- Jobs -------------------------------------------------------------------------------------


def test_supervised_job_end_to_end(provider: OpenAICompatibleProvider) -> None:
    training = upload_bytes(provider, jsonl(chat_examples(20)))
    validation = upload_bytes(provider, jsonl(chat_examples(10, seed=3)), name="valid.jsonl")
    wandb = {"type": "wandb", "wandb": {"project": "tuneboard", "tags": ["ci"]}}
    created = provider.create_job(
        JobSpec(
            model="gpt-4o-mini",
            training_file=training,
            validation_file=validation,
            hyperparameters={"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": "auto"},
            suffix="tone-v2",
            seed=42,
            metadata={"experiment": "tone"},
            integrations=[wandb],
        )
    )
    assert created.id.startswith("ftjob-") and created.model == "gpt-4o-mini-2024-07-18"
    job = wait_for_status(provider, created.id, {"succeeded"})
    assert job.method == "supervised" and job.seed == 42
    assert job.hyperparameters["n_epochs"] == 3 and job.hyperparameters["batch_size"] == 4
    assert isinstance(job.hyperparameters["learning_rate_multiplier"], float)  # resolved
    assert job.metadata == {"experiment": "tone"}
    assert job.integrations and job.integrations[0]["wandb"]["project"] == "tuneboard"
    assert (job.training_file, job.validation_file) == (training, validation)
    assert job.error is None and isinstance(job.trained_tokens, int) and job.finished_at
    assert job.fine_tuned_model and ":tone-v2:" in job.fine_tuned_model
    assert len(job.result_files) == 1 and job.raw["object"] == "fine_tuning.job"

    # Events: newest first, paged with `after` until has_more is False.
    events: list[EventInfo] = []
    after = None
    pages = 0
    while True:
        page = provider.list_events(job.id, after=after, limit=7)
        events.extend(page.data)
        pages += 1
        if not page.has_more:
            break
        after = page.last_id
    assert pages >= 3
    assert [e.id for e in events] == [e.id for e in provider.list_events(job.id, limit=1000).data]
    assert len({e.id for e in events}) == len(events)
    times = [e.created_at or 0 for e in events]
    assert times == sorted(times, reverse=True)
    assert events[-1].message == f"Created fine-tuning job: {job.id}"
    assert events[0].message == "The job has successfully completed"
    metrics = [e for e in events if e.type == "metrics"]
    assert metrics and all("train_loss" in e.data for e in metrics)
    assert all(e.data == {} for e in events if e.type == "message")

    # Checkpoints: the last three epochs, newest first, pageable.
    checkpoints = provider.list_checkpoints(job.id).data
    assert [c.step_number for c in checkpoints] == sorted(
        (c.step_number or 0 for c in checkpoints), reverse=True
    )
    assert len(checkpoints) == 3 and not provider.list_checkpoints(job.id).has_more
    first = provider.list_checkpoints(job.id, limit=1)
    second = provider.list_checkpoints(job.id, limit=1, after=first.last_id)
    assert first.has_more and [first.data[0], second.data[0]] == checkpoints[:2]
    newest: CheckpointInfo = checkpoints[0]
    assert newest.fine_tuning_job_id == job.id
    assert isinstance(newest.metrics["train_loss"], float) and newest.metrics["step"] > 0
    assert (
        newest.fine_tuned_model_checkpoint
        == f"{job.fine_tuned_model}:ckpt-step-{newest.step_number}"
    )

    # The results file in the contract profile is plain CSV.
    csv_text = provider.download_results_csv(job.result_files[0])
    assert csv_text.startswith("step,train_loss,train_accuracy")
    assert provider.download_file(job.result_files[0]).startswith(b"step,")

    # Chat on the base model, the fine-tuned model and a checkpoint.
    question = chat_examples(20)[0]["messages"][:2]
    for model in ("gpt-4o-mini", job.fine_tuned_model, newest.fine_tuned_model_checkpoint):
        result = provider.chat_completion(
            model=model, messages=question, temperature=0, max_tokens=64, seed=1
        )
        assert result.content and result.finish_reason in ("stop", "length")
        assert result.prompt_tokens and result.completion_tokens
        assert result.total_tokens == result.prompt_tokens + result.completion_tokens
        assert 0 < result.latency_seconds < 10
        assert result.raw["object"] == "chat.completion"
    tuned = provider.chat_completion(model=job.fine_tuned_model, messages=question)
    assert tuned.model == job.fine_tuned_model and tuned.content

    # Models: the fine-tuned one is listed until deleted.
    models = {m.id: m for m in provider.list_models()}
    assert "gpt-4o-mini-2024-07-18" in models and models["gpt-4o-mini-2024-07-18"].created
    assert job.fine_tuned_model in models
    assert provider.delete_model(job.fine_tuned_model) is True
    assert job.fine_tuned_model not in {m.id for m in provider.list_models()}
    with pytest.raises(NotFoundError):
        provider.chat_completion(model=job.fine_tuned_model, messages=question)
    with pytest.raises(NotFoundError):
        provider.retrieve_model(job.fine_tuned_model)
    # A checkpoint's model can be retrieved by its id until it is deleted (or pruned).
    checkpoint = newest.fine_tuned_model_checkpoint
    assert provider.retrieve_model(checkpoint).id == checkpoint
    assert provider.retrieve_model("gpt-4o-mini-2024-07-18").owned_by == "system"
    assert provider.delete_model(checkpoint) is True
    with pytest.raises(NotFoundError):
        provider.retrieve_model(checkpoint)


def test_dpo_job(provider: OpenAICompatibleProvider) -> None:
    training = upload_bytes(provider, jsonl(dpo_examples(12)), name="prefs.jsonl")
    created = provider.create_job(
        JobSpec(
            model="gpt-4o-mini",
            training_file=training,
            method="dpo",
            hyperparameters={"beta": 0.2, "n_epochs": 1, "batch_size": "auto"},
        )
    )
    job = wait_for_status(provider, created.id, {"succeeded"})
    assert job.method == "dpo"
    assert job.hyperparameters["beta"] == 0.2 and job.hyperparameters["n_epochs"] == 1
    assert job.raw["method"]["dpo"]["hyperparameters"]["beta"] == 0.2
    assert job.fine_tuned_model


def test_list_jobs_by_metadata_with_paging(
    provider: OpenAICompatibleProvider, training_file: str
) -> None:
    mine = [
        provider.create_job(
            JobSpec(model="gpt-4o-mini", training_file=training_file, metadata={"batch": "b7"})
        ).id
        for _ in range(5)
    ]
    for other in ({"batch": "b8"}, None):
        provider.create_job(
            JobSpec(model="gpt-4o-mini", training_file=training_file, metadata=other)
        )
    listed: list[str] = []
    after = None
    while True:
        page = provider.list_jobs(metadata={"batch": "b7"}, limit=2, after=after)
        assert len(page.data) <= 2
        listed.extend(job.id for job in page.data)
        if not page.has_more:
            break
        after = page.last_id
    assert listed == list(reversed(mine))  # newest first, nothing else, nothing twice
    assert len(provider.list_jobs().data) == 7


def test_pause_resume_cancel(provider: OpenAICompatibleProvider, training_file: str) -> None:
    created = provider.create_job(
        JobSpec(
            model="gpt-4o-mini",
            training_file=training_file,
            hyperparameters={"n_epochs": 20, "batch_size": 4},
            metadata={"sandbox_seconds_per_step": "0.05"},
        )
    )
    wait_for_status(provider, created.id, {"running"})
    sent = record_requests(provider)
    paused = provider.pause_job(created.id)
    assert paused.status == "paused"
    assert sent[0].headers["content-type"] == "application/json" and sent[0].content == b""
    assert provider.retrieve_job(created.id).status == "paused"
    resumed = provider.resume_job(created.id)
    assert resumed.status in ("queued", "running")
    cancelled = provider.cancel_job(created.id)
    assert cancelled.status == "cancelled" and cancelled.finished_at
    before = provider.request_count
    with pytest.raises(BadRequestError) as error:
        provider.cancel_job(created.id)
    assert error.value.status == 400 and error.value.param == "fine_tuning_job_id"
    assert provider.request_count - before == 1
    messages = {e.message for e in provider.list_events(created.id).data}
    assert {"Fine-tuning job paused", "Fine-tuning job resumed"} <= messages
