"""The sandbox's per-key request rate limit: OpenAI's 429 (body and Retry-After) once a key has
made its limit of requests in the window, counted in the real Redis, per key."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import Sandbox
from tests.sandbox.conftest import make_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_key_over_its_limit_gets_openais_429(
    sandbox: Sandbox, sdk: openai.OpenAI, other_sandbox_key: str
) -> None:
    account = sandbox.control("account", {"rate_limit": 3})
    assert account["rate_limit"] == 3 and account["rate_limit_effective"] == 3
    window = account["rate_limit_window"]
    remaining = []
    for _ in range(3):
        response = httpx.get(f"{sandbox.url}/models", headers=sandbox.auth)
        assert response.status_code == 200
        assert response.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(response.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]

    refused = httpx.get(f"{sandbox.url}/fine_tuning/jobs", headers=sandbox.auth)
    assert refused.status_code == 429
    assert refused.json() == {
        "error": {
            "message": refused.json()["error"]["message"],
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    }
    assert "Rate limit reached for requests" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= window
    assert 0 < int(refused.headers["retry-after-ms"]) <= window * 1000
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-request-id"].startswith("req_")
    # The official SDK (strict) sees it as a RateLimitError with the body above.
    with pytest.raises(openai.RateLimitError) as error:
        sdk.models.list()
    assert error.value.body["code"] == "rate_limit_exceeded"  # type: ignore[index]

    # Refused requests do not count, another key has its own count, and the controls stay
    # reachable: raising the limit lets the key through at once.
    other = make_client(sandbox.url, key=other_sandbox_key)
    assert other.models.list().data
    assert sandbox.control("faults", method="GET")["data"] == []
    sandbox.control("account", {"rate_limit": 10})
    response = httpx.get(f"{sandbox.url}/models", headers=sandbox.auth)
    assert response.status_code == 200
    # 3 admitted before, 1 now; the refused ones (2) are not in the count.
    assert response.headers["x-ratelimit-remaining-requests"] == "6"


def test_the_default_limit_comes_from_settings_and_zero_turns_it_off(
    sandbox: Sandbox, settings: Any
) -> None:
    settings.SANDBOX_RATE_LIMIT = 2
    statuses = [
        httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 429]
    assert sandbox.control("account", method="GET")["rate_limit_effective"] == 2
    sandbox.control("account", {"rate_limit": 0})  # this key: no limit
    statuses = [
        httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    sandbox.control("account", {"rate_limit": None})  # back to the default, still exhausted
    assert httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code == 429
    settings.SANDBOX_RATE_LIMIT = 0
    assert httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code == 200


def test_bad_rate_limit_values_are_refused(sandbox: Sandbox) -> None:
    for value in (-1, "10", 1.5, True, 10**10):
        response = httpx.post(
            f"{sandbox.url.removesuffix('/v1')}/control/account",
            headers=sandbox.auth,
            json={"rate_limit": value},
        )
        assert response.status_code == 400, value
        assert response.json()["error"]["param"] == "rate_limit"


def test_without_redis_the_limit_fails_open(sandbox: Sandbox, settings: Any, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sandbox.control("account", {"rate_limit": 1})
    settings.CELERY_BROKER_URL = f"redis+socket://{tmp_path}/nobody-listens.sock"
    statuses = [
        httpx.get(f"{sandbox.url}/models", headers=sandbox.auth).status_code for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
