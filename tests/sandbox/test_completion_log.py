"""The chat completion log (sandbox/completion_log.py): one row per authenticated POST to
chat/completions, with the status the sandbox answered, and its control endpoint."""

from __future__ import annotations

import hashlib
import json
import logging

import httpx
import openai
import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from sandbox import completion_log
from sandbox.api import Caller
from sandbox.models import SandboxAccount, SandboxCompletion
from tests.conftest import Sandbox, wait_until
from tests.sandbox.conftest import make_client

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "gpt-4o-mini"
HELLO = [{"role": "user", "content": "Hello, café!"}]
BYE = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Goodbye", "name": "sam"},
]


def sha(messages: list[dict]) -> str:
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def control_url(sandbox_url: str) -> str:
    return f"{sandbox_url.removesuffix('/v1')}/control/completions"


def counts(sandbox: Sandbox, key: str | None = None, **params: str) -> list[dict]:
    response = httpx.get(
        control_url(sandbox.url),
        headers={"Authorization": f"Bearer {key or sandbox.key}"},
        params=params,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "list"
    return body["data"]


def add_fault(sandbox: Sandbox, **body: object) -> None:
    sandbox.control("faults", {"path": "/chat/completions$", **body})


def test_each_request_is_logged_once(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    sdk.chat.completions.create(model=MODEL, messages=HELLO)
    sdk.chat.completions.create(model=MODEL, messages=HELLO, temperature=0, n=3)
    sdk.chat.completions.create(model="gpt-4.1-nano", messages=BYE)
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=BYE, stream=True))
    assert chunks
    # Azure's surface is the same view.
    azure = httpx.post(
        sandbox.url.removesuffix("/v1") + "/openai/v1/chat/completions",
        headers={"api-key": sandbox.key},
        params={"api-version": "2025-04-01-preview"},
        json={"model": MODEL, "messages": HELLO},
    )
    assert azure.status_code == 200

    assert counts(sandbox) == sorted(
        [
            {"model": MODEL, "prompt_sha256": sha(HELLO), "status_code": 200, "count": 3},
            {"model": MODEL, "prompt_sha256": sha(BYE), "status_code": 200, "count": 1},
            {"model": "gpt-4.1-nano", "prompt_sha256": sha(BYE), "status_code": 200, "count": 1},
        ],
        key=lambda row: (row["model"], row["prompt_sha256"]),
    )
    streamed = SandboxCompletion.objects.get(model=MODEL, prompt_sha256=sha(BYE))
    assert streamed.stream is True and streamed.created_at is not None
    assert SandboxCompletion.objects.filter(stream=False).count() == 4


def test_refused_requests_are_logged_with_their_status(
    sandbox: Sandbox, sdk: openai.OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.chat.completions.create(model="ft:gpt-4o-mini:nobody:x:abc", messages=HELLO)
    with pytest.raises(openai.BadRequestError):
        sdk.chat.completions.create(model=MODEL, messages=HELLO, temperature=5)
    url = f"{sandbox.url}/chat/completions"
    auth = sandbox.auth
    assert httpx.post(url, headers=auth, content=b"{not json").status_code == 400
    # Not counted: no valid key, another method.
    assert httpx.post(url, json={"model": MODEL, "messages": HELLO}).status_code == 401
    bad_key = {"Authorization": "Bearer sk-wrong-key-123456"}
    assert httpx.post(url, headers=bad_key, json={"model": MODEL}).status_code == 401
    assert httpx.get(url, headers=auth).status_code == 405

    rows = {(r["model"], r["prompt_sha256"], r["status_code"]) for r in counts(sandbox)}
    assert rows == {
        ("ft:gpt-4o-mini:nobody:x:abc", sha(HELLO), 404),
        (MODEL, sha(HELLO), 400),
        ("", "", 400),
    }
    assert SandboxCompletion.objects.count() == 3


def test_injected_faults_are_logged_with_their_status(sandbox: Sandbox, sdk: openai.OpenAI) -> None:
    add_fault(sandbox, kinds=["503"], count=1)
    add_fault(sandbox, kinds=["429"], count=1, retry_after=0.1)
    with pytest.raises(openai.InternalServerError):
        sdk.chat.completions.create(model=MODEL, messages=HELLO)
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    sdk.chat.completions.create(model=MODEL, messages=HELLO)
    add_fault(sandbox, kinds=["hang"], count=1, hang_seconds=0.2)
    with pytest.raises(openai.InternalServerError) as held:
        sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert held.value.status_code == 504
    add_fault(sandbox, kinds=["drop"], count=1)
    with pytest.raises(httpx.TransportError):
        httpx.post(
            f"{sandbox.url}/chat/completions",
            headers=sandbox.auth,
            json={"model": MODEL, "messages": BYE},
        )
    # The dropped request is recorded after its connection is cut.
    assert wait_until(lambda: SandboxCompletion.objects.count() == 5, timeout=5)

    statuses = {(r["prompt_sha256"], r["status_code"]): r["count"] for r in counts(sandbox)}
    assert statuses == {
        (sha(HELLO), 200): 1,
        (sha(HELLO), 429): 1,
        (sha(HELLO), 503): 1,
        (sha(HELLO), 504): 1,
        (sha(BYE), 500): 1,
    }
    assert SandboxCompletion.objects.get(status_code=429).stream is True
    # Faults on other paths leave the log alone.
    add_fault(sandbox, kinds=["500"], count=1, path="/models$")
    with pytest.raises(openai.InternalServerError):
        sdk.models.list()
    assert SandboxCompletion.objects.count() == 5


def test_control_endpoint_filters_clears_and_isolates_keys(
    sandbox: Sandbox, sdk: openai.OpenAI, other_sandbox_key: str
) -> None:
    other = make_client(sandbox.url, key=other_sandbox_key)
    for _ in range(2):
        sdk.chat.completions.create(model=MODEL, messages=HELLO)
    sdk.chat.completions.create(model="gpt-4.1-mini", messages=HELLO)
    other.chat.completions.create(model=MODEL, messages=HELLO)

    assert [(r["model"], r["count"]) for r in counts(sandbox)] == [
        ("gpt-4.1-mini", 1),
        (MODEL, 2),
    ]
    assert counts(sandbox, model=MODEL) == [
        {"model": MODEL, "prompt_sha256": sha(HELLO), "status_code": 200, "count": 2}
    ]
    assert counts(sandbox, model="gpt-3.5-turbo") == []
    assert counts(sandbox, key=other_sandbox_key) == [
        {"model": MODEL, "prompt_sha256": sha(HELLO), "status_code": 200, "count": 1}
    ]

    url = control_url(sandbox.url)
    assert httpx.get(url).status_code == 401
    assert httpx.post(url, headers=sandbox.auth).status_code == 405
    cleared = httpx.delete(url, headers=sandbox.auth)
    assert cleared.status_code == 200 and cleared.json() == {"deleted": 3}
    assert counts(sandbox) == []
    assert counts(sandbox, key=other_sandbox_key)[0]["count"] == 1


def test_the_control_endpoint_ignores_injected_faults(sandbox: Sandbox) -> None:
    add_fault(sandbox, kinds=["500"], count=1, path="")
    assert counts(sandbox) == []


def test_a_failing_log_never_breaks_the_response(
    sandbox: Sandbox, sdk: openai.OpenAI, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    def broken(**fields: object) -> None:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(SandboxCompletion.objects, "create", broken)
    with caplog.at_level(logging.ERROR, logger="sandbox.api"):
        reply = sdk.chat.completions.create(model=MODEL, messages=HELLO)
    assert reply.choices[0].message.content
    assert any("could not record" in r.getMessage() for r in caplog.records)
    assert any("database is on fire" in (r.exc_text or "") for r in caplog.records)


def test_a_request_is_one_insert(django_assert_num_queries) -> None:  # type: ignore[no-untyped-def]
    body = {"model": "gpt-4o\x00-mini" + "x" * 400, "messages": HELLO, "stream": True}
    request = RequestFactory().post(
        "/sandbox/v1/chat/completions", data=json.dumps(body), content_type="application/json"
    )
    caller = Caller("org-test", "org-test", SandboxAccount(owner="org-test"))
    finish = completion_log.start(request, caller)
    with django_assert_num_queries(1) as queries:
        finish(HttpResponse(status=200))
    assert queries.captured_queries[0]["sql"].startswith("INSERT")
    row = SandboxCompletion.objects.get()
    assert row.model == ("gpt-4o-mini" + "x" * 400)[:300] and row.stream is True
    assert row.prompt_sha256 == sha(HELLO) == completion_log.prompt_sha256(HELLO)
