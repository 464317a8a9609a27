"""The sandbox refuses hyperparameters and suffixes outside the provider's ranges with OpenAI's
error body (a learning-rate multiplier of 1e308 once made every loss NaN and broke the job
list for that key), and accepts the edges of the ranges."""

from __future__ import annotations

import math

import httpx
import openai
import pytest

from tests.conftest import Sandbox
from tests.sandbox.data import chat_examples

pytestmark = pytest.mark.django_db(transaction=True)

LR = "method.supervised.hyperparameters.learning_rate_multiplier"


def supervised(**hyperparameters: object) -> dict:
    return {"method": {"type": "supervised", "supervised": {"hyperparameters": hyperparameters}}}


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        (supervised(learning_rate_multiplier=1e308), LR, "a number from 0.00001 to 10"),
        (supervised(learning_rate_multiplier=5e-324), LR, "a number from 0.00001 to 10"),
        (supervised(learning_rate_multiplier=10.5), LR, "a number from 0.00001 to 10"),
        (supervised(n_epochs=51), "method.supervised.hyperparameters.n_epochs", "1 and 50"),
        (supervised(batch_size=0), "method.supervised.hyperparameters.batch_size", "1 and 256"),
        ({"suffix": "a/b"}, "suffix", "letters, digits, hyphens or underscores"),
        ({"suffix": ".."}, "suffix", "letters, digits, hyphens or underscores"),
        ({"suffix": "../../files"}, "suffix", "letters, digits, hyphens or underscores"),
        ({"suffix": ""}, "suffix", "letters, digits, hyphens or underscores"),
    ],
)
def test_out_of_range_refused_with_openais_error_body(
    sandbox: Sandbox, upload_jsonl, body: dict, param: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    request = {"model": "gpt-4o-mini", "training_file": upload_jsonl(chat_examples(12)), **body}
    response = httpx.post(f"{sandbox.url}/fine_tuning/jobs", headers=sandbox.auth, json=request)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert message in error["message"]
    listed = httpx.get(f"{sandbox.url}/fine_tuning/jobs", headers=sandbox.auth)
    assert listed.status_code == 200 and listed.json()["data"] == []


def test_edges_of_the_ranges_train_into_finite_numbers(sdk: openai.OpenAI, upload_jsonl) -> None:  # type: ignore[no-untyped-def]
    file_id = upload_jsonl(chat_examples(12))
    for multiplier in (0.00001, 10):
        sdk.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, suffix="edge-case_1",
            method=supervised(learning_rate_multiplier=multiplier, n_epochs=50, batch_size=256)["method"],
        )  # fmt: skip
    jobs = sdk.fine_tuning.jobs.list().data
    assert len(jobs) == 2 and all(job.status == "succeeded" for job in jobs)
    for job in jobs:
        assert ":edge-case_1:" in (job.fine_tuned_model or "")
        losses = [
            event.data["train_loss"]
            for event in sdk.fine_tuning.jobs.list_events(job.id, limit=100)
            if event.type == "metrics"
        ]
        assert losses and all(math.isfinite(loss) for loss in losses)
