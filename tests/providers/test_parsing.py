"""Tolerant parsing of shapes the sandbox never sends but real providers have (docs §7, §9),
and the pure retry arithmetic. Plain data in, records out: nothing to stand in for."""

from __future__ import annotations

import base64
import email.utils
import pickle
import random

from jobs.providers import (
    AuthError,
    CheckpointInfo,
    ConnectionConfig,
    EventInfo,
    FileInfo,
    JobInfo,
    JobSpec,
    ModelInfo,
    NotFoundError,
)
from jobs.providers.openai_compat import decode_results_csv, job_body
from jobs.providers.retry import backoff_seconds, retry_after_seconds, status_is_retryable


def test_job_with_quirks() -> None:
    job = JobInfo.from_api(
        {
            "id": "ftjob-1",
            "status": "paused",
            "created_at": 1760001000.75,
            "finished_at": None,
            "error": {"code": None, "message": None, "param": None},
            "hyperparameters": {
                "n_epochs": "auto",
                "batch_size": 4,
                "learning_rate_multiplier": 1.8,
            },
            "user_provided_suffix": "x",
            "usage_metrics": None,
            "brand_new_field": {"anything": True},
        }
    )
    assert job.status == "paused" and job.created_at == 1760001000 and job.error is None
    assert job.hyperparameters == {
        "n_epochs": "auto",
        "batch_size": 4,
        "learning_rate_multiplier": 1.8,
    }
    assert job.method == "supervised" and job.result_files == [] and job.metadata is None
    assert job.model is None and job.seed is None and job.integrations is None


def test_dpo_job_with_null_legacy_hyperparameters() -> None:
    job = JobInfo.from_api(
        {
            "id": "ftjob-2",
            "status": "running",
            "hyperparameters": None,
            "error": {},
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": "auto", "n_epochs": 2}}},
            "estimated_finish": "1760004600",
        }
    )
    assert job.method == "dpo" and job.hyperparameters == {"beta": "auto", "n_epochs": 2}
    assert job.error is None and job.estimated_finish == 1760004600


def test_failed_job_error() -> None:
    job = JobInfo.from_api(
        {
            "id": "ftjob-3",
            "status": "failed",
            "error": {
                "code": "invalid_training_file",
                "message": "Line 7 is bad",
                "param": "training_file",
            },
        }
    )
    assert job.error is not None and job.error.code == "invalid_training_file"
    assert job.error.param == "training_file" and job.error.message == "Line 7 is bad"


def test_other_records() -> None:
    assert EventInfo.from_api({"id": "e", "created_at": 5, "data": None}).data == {}
    event = EventInfo.from_api({"id": "e", "message": "m"})
    assert (event.type, event.level, event.data) == ("message", "info", {})
    checkpoint = CheckpointInfo.from_api(
        {
            "id": "c",
            "step_number": 40,
            "metrics": {"step": 40, "train_loss": 0.5, "note": "x", "v": None},
        }
    )
    assert checkpoint.metrics == {"step": 40.0, "train_loss": 0.5}
    assert isinstance(checkpoint.metrics["step"], float)
    file = FileInfo.from_api({"id": "file-1", "bytes": 10, "created_at": "2025-01-02T03:04:05Z"})
    assert file.status == "processed" and file.created_at == 1735787045
    assert ModelInfo.from_api({"id": "m"}) == ModelInfo(id="m", created=None, owned_by=None)


def test_job_body_uses_the_method_form_and_drops_auto() -> None:
    body = job_body(
        JobSpec(
            model="gpt-4o-mini",
            training_file="file-t",
            method="dpo",
            hyperparameters={"beta": 0.1, "n_epochs": "auto", "batch_size": None},
            seed=0,
        )
    )
    assert body == {
        "model": "gpt-4o-mini",
        "training_file": "file-t",
        "method": {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.1}}},
        "seed": 0,
    }
    plain = job_body(JobSpec(model="m", training_file="f"))
    assert plain["method"] == {"type": "supervised"} and "hyperparameters" not in plain


def test_results_csv_plain_or_base64() -> None:
    csv_text = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n1,1.5,0.0,,\n"
    encoded = base64.b64encode(csv_text.encode())
    assert decode_results_csv(csv_text.encode()) == csv_text
    assert decode_results_csv(encoded) == csv_text
    wrapped = b"\n".join(encoded[i : i + 20] for i in range(0, len(encoded), 20)) + b"\n"
    assert decode_results_csv(wrapped) == csv_text
    assert decode_results_csv(b"\xef\xbb\xbf" + csv_text.encode()) == csv_text
    assert decode_results_csv(b"not csv, not base64!") == "not csv, not base64!"


def test_retry_after_headers() -> None:
    assert retry_after_seconds({"retry-after": "2"}, cap=60) == 2
    assert retry_after_seconds({"retry-after": "0.3", "retry-after-ms": "250"}, cap=60) == 0.25
    assert retry_after_seconds({"retry-after": "120"}, cap=60) == 60
    now = 1_760_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, cap=60, now=now) == 7
    past = email.utils.formatdate(now - 7, usegmt=True)
    assert retry_after_seconds({"retry-after": past}, cap=60, now=now) == 0
    for junk in ({}, {"retry-after": "soon"}, {"retry-after": "-1"}, {"retry-after-ms": "nan"}):
        assert retry_after_seconds(junk, cap=60) is None


def test_which_statuses_are_retried() -> None:
    assert all(status_is_retryable(s, {}) for s in (408, 409, 429, 500, 502, 503, 504))
    assert not any(status_is_retryable(s, {}) for s in (400, 401, 403, 404, 422))
    assert status_is_retryable(400, {"x-should-retry": "true"})
    assert not status_is_retryable(503, {"x-should-retry": "false"})


def test_backoff_is_full_jitter_under_the_cap() -> None:
    rng = random.Random(3)
    delays = [
        backoff_seconds(a, base=0.5, maximum=20, rng=rng) for a in range(12) for _ in range(50)
    ]
    assert all(0 <= d <= 20 for d in delays) and max(delays) > 10
    assert all(backoff_seconds(0, base=0.5, maximum=20, rng=rng) <= 0.5 for _ in range(100))


def test_errors_are_safe_and_picklable() -> None:
    config = ConnectionConfig(
        kind="openai", base_url="https://api.openai.com/v1", api_key="sk-secret-1"
    )
    assert "sk-secret-1" not in repr(config)
    error = NotFoundError("No such File object: file-x", status=404, param="id", request_id="req_1")
    assert str(error) == "No such File object: file-x (HTTP 404, param: id, request id: req_1)"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(copy) is NotFoundError and (copy.status, copy.param) == (404, "id")
    assert str(AuthError("Bad key")) == "Bad key"
