"""Real-world response quirks (the sandbox's realism profile) and Azure OpenAI's conventions."""

from __future__ import annotations

import re

import httpx
import pytest

from jobs.providers import AuthError, JobSpec, NotFoundError, OpenAICompatibleProvider
from tests.providers.conftest import record_requests, upload_bytes, wait_for_status
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def test_realism_profile_quirks_are_tolerated(
    provider: OpenAICompatibleProvider, training_file: str, set_profile
) -> None:  # type: ignore[no-untyped-def]
    set_profile("realism")
    created = provider.create_job(JobSpec(model="gpt-4o-mini", training_file=training_file))
    assert created.raw["error"] == {} and created.error is None
    job = wait_for_status(provider, created.id, {"succeeded"})
    assert job.raw["error"] == {} and job.error is None
    assert "user_provided_suffix" in job.raw and "usage_metrics" in job.raw  # extra keys
    events = provider.list_events(job.id, limit=1000).data
    message_events = [e for e in events if e.type == "message"]
    assert message_events and all(e.data == {} for e in message_events)
    assert all(e.data["train_loss"] > 0 for e in events if e.type == "metrics")

    raw = provider.download_file(job.result_files[0])
    assert not raw.startswith(b"step")  # base64, as the real API serves it
    realism_csv = provider.download_results_csv(job.result_files[0])
    assert realism_csv.startswith("step,train_loss")
    set_profile("contract")
    assert provider.download_results_csv(job.result_files[0]) == realism_csv

    set_profile("realism")
    slow = provider.create_job(
        JobSpec(
            model="gpt-4o-mini",
            training_file=training_file,
            hyperparameters={"n_epochs": 20},
            metadata={"sandbox_seconds_per_step": "0.05"},
        )
    )
    wait_for_status(provider, slow.id, {"running"})
    paused = provider.pause_job(slow.id)
    assert paused.status == "paused" and paused.error is None
    assert provider.retrieve_job(slow.id).status == "paused"
    assert provider.cancel_job(slow.id).status == "cancelled"


def test_failed_job_carries_the_error(provider: OpenAICompatibleProvider, set_profile) -> None:  # type: ignore[no-untyped-def]
    set_profile("realism")
    broken = upload_bytes(provider, b"not json\n" * 12, name="broken.jsonl")
    created = provider.create_job(JobSpec(model="gpt-4o-mini", training_file=broken))
    job = wait_for_status(provider, created.id, {"failed"})
    assert job.error is not None
    assert (job.error.code, job.error.param) == ("invalid_training_file", "training_file")
    assert job.error.message and job.error.message.startswith("The job failed")


def test_openai_headers(make_provider, sandbox_key: str) -> None:  # type: ignore[no-untyped-def]
    provider = make_provider(kind="openai", organization="org-acme", project="proj_42")
    sent = record_requests(provider)
    assert provider.list_models()
    headers = sent[0].headers
    assert headers["authorization"] == f"Bearer {sandbox_key}" and "api-key" not in headers
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-acme", "proj_42")
    assert re.fullmatch(r"Tuneboard/\d+\.\d+\S*", headers["user-agent"])
    assert "api-version" not in sent[0].url.params
    plain = make_provider()
    sent = record_requests(plain)
    plain.list_models()
    assert "openai-organization" not in sent[0].headers
    assert "openai-project" not in sent[0].headers


@pytest.mark.parametrize("api_version", ["", "2025-04-01-preview"])
def test_azure_conventions(
    make_provider, sandbox_url: str, sandbox_key: str, api_version: str
) -> None:  # type: ignore[no-untyped-def]
    azure_url = sandbox_url.removesuffix("/v1") + "/openai/v1"
    azure = make_provider(kind="azure_openai", base_url=azure_url, api_version=api_version)
    sent = record_requests(azure)
    assert any(m.id == "gpt-4o-mini-2024-07-18" for m in azure.list_models())
    file_id = upload_bytes(azure, jsonl(chat_examples(12)))
    job = azure.create_job(JobSpec(model="gpt-4o-mini", training_file=file_id))
    assert azure.retrieve_job(job.id).id == job.id
    with pytest.raises(NotFoundError):
        azure.retrieve_job("ftjob-missing")
    expected_version = api_version or "preview"
    for request in sent:
        assert request.url.path.startswith("/sandbox/openai/v1/")
        assert request.headers["api-key"] == sandbox_key and "authorization" not in request.headers
        assert request.url.params["api-version"] == expected_version

    # The key travels only in that header: without it, or with a wrong key, access is refused.
    bare = httpx.get(f"{azure_url}/models", params={"api-version": expected_version})
    assert bare.status_code == 401
    impostor = make_provider(
        kind="azure_openai", base_url=azure_url, api_key="sk-not-a-sandbox-key-123"
    )
    with pytest.raises(AuthError):
        impostor.list_models()
