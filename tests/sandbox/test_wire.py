"""Wire details the SDK hides: envelopes on unknown routes and methods, headers, raw bodies,
Azure's conventions, and the realism profile's quirks."""

from __future__ import annotations

import base64
import io

import httpx
import openai
import pytest

from tests.sandbox.conftest import KEY, make_client
from tests.sandbox.data import chat_examples, jsonl

pytestmark = pytest.mark.django_db(transaction=True)
AUTH = {"Authorization": f"Bearer {KEY}"}


def assert_envelope(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_unknown_route_and_method_use_the_envelope(sandbox_url: str) -> None:
    assert_envelope(httpx.get(f"{sandbox_url}/fine-tuning/jobs", headers=AUTH), 404)
    assert_envelope(httpx.get(f"{sandbox_url}/nope/deeper/path", headers=AUTH), 404)
    error = assert_envelope(
        httpx.request("TRACE", f"{sandbox_url}/fine_tuning/jobs", headers=AUTH), 405
    )
    assert error["code"] == "method_not_allowed"
    assert_envelope(httpx.put(f"{sandbox_url}/models", headers=AUTH), 405)


def test_missing_key_is_401(sandbox_url: str) -> None:
    error = assert_envelope(httpx.get(f"{sandbox_url}/models"), 401)
    assert error["code"] == "missing_api_key"


def test_malformed_json_is_400(sandbox_url: str) -> None:
    response = httpx.post(
        f"{sandbox_url}/fine_tuning/jobs",
        headers={**AUTH, "content-type": "application/json"},
        content=b"{nope",
    )
    assert "could not parse the JSON body" in assert_envelope(response, 400)["message"]


def test_every_list_has_has_more(sandbox_url: str) -> None:
    for path in ("/files", "/fine_tuning/jobs"):
        body = httpx.get(sandbox_url + path, headers=AUTH).json()
        assert body["object"] == "list" and body["has_more"] is False


def test_content_ignores_accept_header(sandbox_url: str, sdk: openai.OpenAI) -> None:
    content = jsonl(chat_examples(10))
    file_id = sdk.files.create(file=("a.jsonl", io.BytesIO(content)), purpose="fine-tune").id
    for accept in ("application/binary", "application/json", "text/html"):
        response = httpx.get(
            f"{sandbox_url}/files/{file_id}/content", headers={**AUTH, "Accept": accept}
        )
        assert response.status_code == 200 and response.content == content


def test_bodiless_post_with_json_content_type(sandbox_url: str, sdk: openai.OpenAI) -> None:
    file_id = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = sdk.fine_tuning.jobs.create(
        model="gpt-4o-mini", training_file=file_id, metadata={"sandbox_seconds_per_step": "5"}
    )
    response = httpx.post(
        f"{sandbox_url}/fine_tuning/jobs/{job.id}/cancel",
        headers={**AUTH, "content-type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"


def test_azure_conventions(live_server, sandbox_url: str) -> None:  # type: ignore[no-untyped-def]
    azure = openai.AzureOpenAI(
        api_key=KEY, api_version="2025-04-01-preview", base_url=f"{live_server.url}/sandbox/openai/v1",
        max_retries=0, _strict_response_validation=True,
    )  # fmt: skip
    file_id = azure.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = azure.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    assert azure.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    raw = httpx.get(
        f"{live_server.url}/sandbox/openai/v1/fine_tuning/jobs/{job.id}",
        params={"api-version": "preview"}, headers={"api-key": KEY},
    )  # fmt: skip
    assert raw.status_code == 200 and raw.json()["id"] == job.id


def test_realism_profile_quirks(
    sandbox_url: str, lenient: openai.OpenAI, sdk: openai.OpenAI
) -> None:
    httpx.post(
        f"{sandbox_url.removesuffix('/v1')}/control/account",
        headers=AUTH,
        json={"profile": "realism"},
    ).raise_for_status()
    file_id = sdk.files.create(
        file=("a.jsonl", io.BytesIO(jsonl(chat_examples(10)))), purpose="fine-tune"
    ).id
    job = lenient.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id)
    raw = httpx.get(f"{sandbox_url}/fine_tuning/jobs/{job.id}", headers=AUTH).json()
    assert raw["status"] == "succeeded" and raw["error"] == {}  # healthy job, empty error object
    assert "user_provided_suffix" in raw
    messages = httpx.get(
        f"{sandbox_url}/fine_tuning/jobs/{job.id}/events", headers=AUTH, params={"limit": 200}
    ).json()["data"]
    assert all(e["data"] == {} for e in messages if e["type"] == "message")
    results = lenient.files.content(raw["result_files"][0]).read()
    assert base64.b64decode(results).startswith(b"step,train_loss,train_accuracy")
    with pytest.raises(openai.APIResponseValidationError):
        make_client(sandbox_url).fine_tuning.jobs.retrieve(job.id)  # strict SDK rejects error: {}
