"""Wire details the SDK hides: envelopes on unknown routes and methods, headers, raw bodies,
Azure's conventions, and the realism profile's quirks."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest

from tests.conftest import Sandbox
from tests.sandbox.conftest import make_client
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)


def assert_envelope(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_unknown_route_and_method_use_the_envelope(sandbox: Sandbox) -> None:
    assert_envelope(httpx.get(f"{sandbox.url}/fine-tuning/jobs", headers=sandbox.auth), 404)
    assert_envelope(httpx.get(f"{sandbox.url}/nope/deeper/path", headers=sandbox.auth), 404)
    error = assert_envelope(
        httpx.request("TRACE", f"{sandbox.url}/fine_tuning/jobs", headers=sandbox.auth), 405
    )
    assert error["code"] == "method_not_allowed"
    assert_envelope(httpx.put(f"{sandbox.url}/models", headers=sandbox.auth), 405)


def test_missing_key_is_401(sandbox: Sandbox) -> None:
    error = assert_envelope(httpx.get(f"{sandbox.url}/models"), 401)
    assert error["code"] == "missing_api_key"


def test_malformed_json_is_400(sandbox: Sandbox) -> None:
    response = httpx.post(
        f"{sandbox.url}/fine_tuning/jobs",
        headers={**sandbox.auth, "content-type": "application/json"},
        content=b"{nope",
    )
    assert "could not parse the JSON body" in assert_envelope(response, 400)["message"]


def test_every_list_has_has_more(sandbox: Sandbox) -> None:
    for path in ("/files", "/fine_tuning/jobs"):
        body = httpx.get(sandbox.url + path, headers=sandbox.auth).json()
        assert body["object"] == "list" and body["has_more"] is False


def test_content_ignores_accept_header(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    content = jsonl(chat_examples(10))
    file_id = sdk.files.create(file=("a.jsonl", io.BytesIO(content)), purpose="fine-tune").id
    for accept in ("application/binary", "application/json", "text/html"):
        response = httpx.get(
            f"{sandbox.url}/files/{file_id}/content", headers={**sandbox.auth, "Accept": accept}
        )
        assert response.status_code == 200 and response.content == content


def test_bodiless_post_with_json_content_type(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    file_id = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata={"sandbox_seconds_per_step": "5"}
    )
    response = httpx.post(
        f"{sandbox.url}/fine_tuning/jobs/{job.id}/cancel",
        headers={**sandbox.auth, "content-type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_azure_conventions(live_server, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    azure = openai.AzureOpenAI(
        api_key=sandbox.key, api_version="2025-04-01-preview", base_url=f"{live_server.url}/sandbox/openai/v1",
        max_retries=0, _strict_response_validation=True,
    )  # fmt: skip
    file_id = azure.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = azure.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert azure.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    raw = httpx.get(
        f"{live_server.url}/sandbox/openai/v1/fine_tuning/jobs/{job.id}",
        params={"api-version": "preview"}, headers={"api-key": sandbox.key},
    )  # fmt: skip
    assert raw.status_code == 200 and raw.json()["id"] == job.id


def test_realism_profile_quirks(
    sandbox: Sandbox, lenient: openai.OpenAI, sdk: openai.OpenAI
) -> None:
    httpx.post(
        f"{sandbox.url.removesuffix('/v1')}/control/account",
        headers=sandbox.auth,
        json={"profile": "realism"},
    ).raise_for_status()
    file_id = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = lenient.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    raw = httpx.get(f"{sandbox.url}/fine_tuning/jobs/{job.id}", headers=sandbox.auth).json()
    assert raw["status"] == "succeeded" and raw["error"] == {}  # healthy job, empty error object
    assert "user_provided_suffix" in raw
    messages = httpx.get(
        f"{sandbox.url}/fine_tuning/jobs/{job.id}/events",
        headers=sandbox.auth,
        params={"limit": 200},
    ).json()["data"]
    assert all(e["data"] == {} for e in messages if e["type"] == "message")
    results = lenient.files.content(raw["result_files"][0]).read()
    assert base64.b64decode(results).startswith(b"step,train_loss,train_accuracy")
    with pytest.raises(openai.APIResponseValidationError):
        make_client(sandbox.url, key=sandbox.key).fine_tuning.jobs.retrieve(
            job.id
        )  # strict SDK rejects error: {}
