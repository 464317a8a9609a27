"""The official `openai` SDK, in strict response-validation mode, drives the sandbox over real
HTTP through the whole fine-tuning workflow. Any response the SDK's types reject fails here."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools

import openai
import pytest

from tests.sandbox.conftest import make_client
from tests.sandbox.data import chat_examples, dpo_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def wait_status(
    client: openai.OpenAI, job_id: str, statuses: set[str], timeout: float = 30
) -> object:
    import time

    deadline = time.monotonic() + timeout
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


# --- Files ------------------------------------------------------------------------------------


def test_files_create_list_retrieve_content_delete(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    content = jsonl(chat_examples(12))
    ids = [upload_jsonl(raw=content, name=f"f{i}.jsonl") for i in range(3)]
    listed = [f.id for f in sdk.files.list(limit=1, purpose="fine-tune")]  # auto-paginates
    assert listed == list(reversed(ids))  # newest first by default
    ascending = [f.id for f in sdk.files.list(limit=2, order="asc")]
    assert ascending == ids
    info = sdk.files.retrieve(ids[0])
    assert (info.bytes, info.filename, info.purpose, info.status) == (
        len(content),
        "f0.jsonl",
        "fine-tune",
        "processed",
    )
    assert sdk.files.content(ids[0]).read() == content
    deleted = sdk.files.delete(ids[0])
    assert deleted.deleted is True and deleted.id == ids[0]
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.files.retrieve(ids[0])
    assert missing.value.status_code == 404
    assert missing.value.body["param"] == "id"
    assert missing.value.body["message"] == f"No such File object: {ids[0]}"
    assert missing.value.request_id and missing.value.request_id.startswith("req_")


def test_fine_tune_files_must_be_jsonl(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        sdk.files.create(file=("data.csv", io.BytesIO(b"a,b\n")), purpose="fine-tune")
    assert "Must be .jsonl" in error.value.message


def test_uploads_in_parts_with_md5(sdk: openai.OpenAI) -> None:
    content = jsonl(chat_examples(30))
    half = len(content) // 2
    upload = sdk.uploads.create(
        bytes=len(content), filename="big.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    assert upload.status == "pending" and upload.file is None
    second = sdk.uploads.parts.create(upload.id, data=content[half:])
    first = sdk.uploads.parts.create(upload.id, data=content[:half])
    done = sdk.uploads.complete(
        upload.id,
        part_ids=[first.id, second.id],
        md5=hashlib.md5(content).hexdigest(),  # noqa: S324
    )
    assert done.status == "completed" and done.file is not None
    assert done.file.bytes == len(content) and done.file.purpose == "fine-tune"
    assert sdk.files.content(done.file.id).read() == content
    with pytest.raises(openai.BadRequestError):
        sdk.uploads.parts.create(upload.id, data=b"late")


def test_upload_byte_total_and_md5_must_match(sdk: openai.OpenAI) -> None:
    upload = sdk.uploads.create(
        bytes=10, filename="x.jsonl", mime_type="application/jsonl", purpose="fine-tune"
    )
    part = sdk.uploads.parts.create(upload.id, data=b"12345")
    with pytest.raises(openai.BadRequestError) as short:
        sdk.uploads.complete(upload.id, part_ids=[part.id])
    assert short.value.body["param"] == "bytes"
    other = sdk.uploads.parts.create(upload.id, data=b"67890")
    with pytest.raises(openai.BadRequestError) as md5:
        sdk.uploads.complete(upload.id, part_ids=[part.id, other.id], md5="0" * 32)
    assert md5.value.body["param"] == "md5"
    cancelled = sdk.uploads.cancel(upload.id)
    assert cancelled.status == "cancelled"


def test_upload_file_chunked_helper(sdk: openai.OpenAI, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "chunked.jsonl"
    path.write_bytes(jsonl(chat_examples(40)))
    upload = sdk.uploads.upload_file_chunked(
        file=path, mime_type="application/jsonl", purpose="fine-tune", part_size=1024
    )
    assert upload.status == "completed"
    assert sdk.files.content(upload.file.id).read() == path.read_bytes()


# --- Jobs -------------------------------------------------------------------------------------


def test_supervised_job_reaches_succeeded_with_everything(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(100))
    validation = upload_jsonl(chat_examples(12, seed=99), name="valid.jsonl")
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=training,
        validation_file=validation,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 3}}},
        suffix="contract",
        seed=42,
        metadata={"experiment": "contract"},
        integrations=[{"type": "wandb", "wandb": {"project": "tuneboard", "tags": ["ci"]}}],
    )
    assert job.model == "gpt-4o-mini-2024-07-18"  # aliases are normalised
    assert job.seed == 42 and job.metadata == {"experiment": "contract"}
    assert job.integrations[0].wandb.project == "tuneboard"
    done = wait_status(sdk, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:sandbox:contract:{job.id[-8:]}"
    hp = done.method.supervised.hyperparameters
    assert (hp.n_epochs, hp.batch_size) == (3, 1)  # auto batch size for 100 examples
    assert done.hyperparameters.n_epochs == 3
    assert done.trained_tokens and done.trained_tokens > 0 and done.finished_at
    assert done.error is None and len(done.result_files) == 1

    events = list(sdk.fine_tuning.jobs.list_events(job.id, limit=50))  # auto-paginates
    messages = [e.message for e in events]
    assert messages[0] == "The job has successfully completed"
    assert messages[1] == f"New fine-tuned model created: {done.fine_tuned_model}"
    assert messages[-1] == f"Created fine-tuning job: {job.id}"
    assert f"Validating training file: {training} and validation file: {validation}" in messages
    assert "Files validated, moving job to queued state" in messages
    assert "Fine-tuning job started" in messages
    metrics = [e for e in events if e.type == "metrics"]
    assert len(metrics) == 300 and [m.data["step"] for m in metrics] == list(range(300, 0, -1))
    assert all(e.created_at <= n.created_at for n, e in itertools.pairwise(events))
    ends = [m.data for m in metrics if "full_valid_loss" in m.data]
    assert [d["step"] for d in ends] == [300, 200, 100]
    assert len({e.id for e in events}) == len(events)

    checkpoints = list(sdk.fine_tuning.jobs.checkpoints.list(job.id, limit=2))
    assert [c.step_number for c in checkpoints] == [300, 200, 100]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-300"
    assert checkpoints[0].id.startswith("ftckpt_")
    by_step = {m.data["step"]: m.data for m in metrics}
    assert checkpoints[1].metrics.full_valid_loss == by_step[200]["full_valid_loss"]

    results = sdk.files.retrieve(done.result_files[0])
    assert (results.filename, results.purpose) == ("step_metrics.csv", "fine-tune-results")
    rows = list(csv.DictReader(io.StringIO(sdk.files.content(results.id).read().decode())))
    assert len(rows) == 300
    for row in rows:
        data = by_step[int(row["step"])]
        assert float(row["train_loss"]) == data["train_loss"]
        assert float(row["train_accuracy"]) == data["train_mean_token_accuracy"]
        assert (row["valid_loss"] == "") == ("valid_loss" not in data)

    models = [m.id for m in sdk.models.list()]
    assert done.fine_tuned_model in models and "gpt-4o-mini-2024-07-18" in models
    assert sdk.models.retrieve(done.fine_tuned_model).id == done.fine_tuned_model


def test_chat_on_base_fine_tuned_and_checkpoint(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    examples = chat_examples(50)
    training = upload_jsonl(examples)
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini-2024-07-18", training_file=training, seed=3
    )
    done = wait_status(sdk, job.id, {"succeeded"})
    checkpoint = next(
        iter(sdk.fine_tuning.jobs.checkpoints.list(job.id))
    ).fine_tuned_model_checkpoint
    prompt = examples[4]["messages"][:-1]
    trained_reply = examples[4]["messages"][-1]["content"]
    for model in ("gpt-4o-mini-2024-07-18", done.fine_tuned_model, checkpoint):
        reply = sdk.chat.completions.create(model=model, messages=prompt, temperature=0)
        assert reply.model == model and reply.choices[0].message.role == "assistant"
        assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
        streamed = sdk.chat.completions.create(
            model=model,
            messages=prompt,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(streamed)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == reply.choices[0].message.content
        assert chunks[-1].usage.total_tokens == reply.usage.total_tokens
    base_reply = sdk.chat.completions.create(
        model="gpt-4o-mini-2024-07-18", messages=prompt, temperature=0
    )
    tuned_reply = sdk.chat.completions.create(
        model=done.fine_tuned_model, messages=prompt, temperature=0
    )
    assert base_reply.choices[0].message.content != trained_reply
    assert tuned_reply.choices[0].message.content == trained_reply

    assert sdk.models.delete(done.fine_tuned_model).deleted is True
    with pytest.raises(openai.NotFoundError) as gone:
        sdk.chat.completions.create(model=done.fine_tuned_model, messages=prompt)
    assert gone.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve(done.fine_tuned_model)


def test_dpo_job(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(dpo_examples(20))
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-2024-08-06",
        training_file=training,
        method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2, "n_epochs": 2}}},
    )
    done = wait_status(sdk, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", done.error
    assert done.method.type == "dpo"
    assert done.method.dpo.hyperparameters.beta == 0.2
    metrics = [
        e for e in sdk.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"
    ]
    assert "train_reward_accuracy" in metrics[0].data


def test_legacy_top_level_hyperparameters(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(20))
    job = sdk.fine_tuning.jobs.create(
        model="gpt-3.5-turbo",
        training_file=training,
        hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 0.5},
    )
    done = wait_status(sdk, job.id, {"succeeded"})
    hp = done.method.supervised.hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (2, 4, 0.5)
    assert done.method.type == "supervised"


def test_list_jobs_with_metadata_filter_and_pagination(
    sdk: openai.OpenAI, upload_jsonl, other_sandbox_key: str
) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(12))
    made = [
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=training, metadata={"team": team}
        ).id
        for team in ("red", "blue", "red")
    ]
    bare = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training).id
    listed = [j.id for j in sdk.fine_tuning.jobs.list(limit=1)]
    assert listed == [bare, *reversed(made)]
    red = [j.id for j in sdk.fine_tuning.jobs.list(metadata={"team": "red"})]
    assert red == [made[2], made[0]]
    other = make_client(sdk.base_url.__str__().rstrip("/"), key=other_sandbox_key)
    assert list(other.fine_tuning.jobs.list()) == []  # keys are separate organisations


def test_failed_job_carries_the_providers_error(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    lines = jsonl(chat_examples(15)).splitlines(keepends=True)
    lines[6] = b'{"messages": [{"role": "user", "content": "broken"\n'
    training = upload_jsonl(raw=b"".join(lines))
    job = sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training)
    failed = wait_status(sdk, job.id, {"failed", "succeeded"})
    assert failed.status == "failed"
    assert failed.error.code == "invalid_training_file" and failed.error.param == "training_file"
    assert failed.error.message.startswith("The job failed due to an invalid training file. Line 7")
    assert failed.fine_tuned_model is None and failed.result_files == []
    events = list(sdk.fine_tuning.jobs.list_events(job.id))
    assert events[0].level == "error" and events[0].message == failed.error.message


def test_cancel_pause_resume(
    sandbox_url: str, sdk: openai.OpenAI, lenient: openai.OpenAI, upload_jsonl
) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(20))
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=training, metadata={"sandbox_seconds_per_step": "0.05"},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 20}}},
    )  # fmt: skip
    running = wait_status(sdk, job.id, {"running"})
    assert running.status == "running" and running.estimated_finish
    paused = lenient.fine_tuning.jobs.pause(job.id)  # "paused" is outside the SDK's Literal
    assert paused.status == "paused"
    steps_at_pause = _metric_count(sdk, job.id)
    # The run clock stops while paused: brought up to an hour later, the job is where it was.
    import time

    from sandbox.engine import job_advance

    job_advance(job.id, now=time.time() + 3600)
    assert lenient.fine_tuning.jobs.retrieve(job.id).status == "paused"
    assert _metric_count(sdk, job.id) == steps_at_pause
    resumed = lenient.fine_tuning.jobs.resume(job.id)
    assert resumed.status == "queued"
    assert wait_status(sdk, job.id, {"running"}).status == "running"
    cancelled = sdk.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
    with pytest.raises(openai.BadRequestError):
        sdk.fine_tuning.jobs.cancel(job.id)
    with pytest.raises(openai.BadRequestError):
        lenient.fine_tuning.jobs.pause(job.id)
    messages = [e.message for e in sdk.fine_tuning.jobs.list_events(job.id, limit=1000)]
    assert messages[0] == "Fine-tuning job cancelled"
    assert "Fine-tuning job paused" in messages and "Fine-tuning job resumed" in messages


def _metric_count(client: openai.OpenAI, job_id: str) -> int:
    return sum(
        1 for e in client.fine_tuning.jobs.list_events(job_id, limit=1000) if e.type == "metrics"
    )


def test_continue_training_from_a_fine_tuned_model(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    training = upload_jsonl(chat_examples(12))
    first = wait_status(
        sdk,
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=training).id,
        {"succeeded"},
    )
    second = sdk.fine_tuning.jobs.create(
        model=first.fine_tuned_model, training_file=training, suffix="v2"
    )
    done = wait_status(sdk, second.id, {"succeeded"})
    assert done.model == first.fine_tuned_model
    assert done.fine_tuned_model.startswith("ft:gpt-4o-mini-2024-07-18:sandbox:v2:")


# --- Errors -----------------------------------------------------------------------------------


def test_bad_key_is_401_invalid_api_key(sandbox_url: str) -> None:
    client = make_client(sandbox_url, key="sk-wrong-key-123456")
    with pytest.raises(openai.AuthenticationError) as error:
        client.models.list()
    assert error.value.status_code == 401 and error.value.code == "invalid_api_key"
    assert error.value.body["message"].startswith("Incorrect API key provided")


def test_unknown_job_is_404(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        sdk.fine_tuning.jobs.retrieve("ftjob-doesnotexist")
    assert error.value.param == "fine_tuning_job_id"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"extra_body": {"learning_rate": 1}}, "learning_rate"),
        ({"hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        (
            {
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"batch_size": 300}},
                }
            },
            "method.supervised.hyperparameters.batch_size",
        ),
        (
            {
                "method": {
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"learning_rate_multiplier": 0}},
                }
            },
            "method.supervised.hyperparameters.learning_rate_multiplier",
        ),
        (
            {"method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 2.5}}}},
            "method.dpo.hyperparameters.beta",
        ),
        ({"suffix": "x" * 65}, "suffix"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata"),
        ({"model": "gpt-99"}, "model"),
        ({"training_file": "file-missing"}, "training_file"),
    ],
)
def test_request_validation(sdk: openai.OpenAI, upload_jsonl, kwargs: dict, param: str) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "gpt-4o-mini", "training_file": upload_jsonl(chat_examples(12)), **kwargs}
    with pytest.raises(openai.BadRequestError) as error:
        sdk.fine_tuning.jobs.create(**body)
    assert error.value.status_code == 400
    assert error.value.param == param


def test_training_file_with_wrong_purpose(sdk: openai.OpenAI) -> None:
    other = sdk.files.create(file=("notes.jsonl", io.BytesIO(b'{"a": 1}\n')), purpose="batch")
    with pytest.raises(openai.BadRequestError) as error:
        sdk.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=other.id)
    assert error.value.param == "training_file"
