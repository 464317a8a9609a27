"""provider_for keeps one pooled client per cache key."""

from __future__ import annotations

import pytest

from jobs.providers import ConnectionConfig, OpenAICompatibleProvider, close_all, provider_for

CONFIG = ConnectionConfig(
    kind="sandbox", base_url="http://127.0.0.1:9/sandbox/v1", api_key="k" * 20
)


def test_same_key_same_client_different_key_different_client() -> None:
    first = provider_for(CONFIG, cache_key="1:100")
    again = provider_for(CONFIG, cache_key="1:100")
    other = provider_for(CONFIG, cache_key="2:100")
    assert isinstance(first, OpenAICompatibleProvider)
    assert isinstance(again, OpenAICompatibleProvider) and isinstance(
        other, OpenAICompatibleProvider
    )
    assert again is first and again.http_client is first.http_client
    assert other.http_client is not first.http_client
    uncached = provider_for(CONFIG)
    assert isinstance(uncached, OpenAICompatibleProvider)
    assert uncached.http_client is not first.http_client
    uncached.close()

    close_all()
    assert first.http_client.is_closed and other.http_client.is_closed
    fresh = provider_for(CONFIG, cache_key="1:100")
    assert isinstance(fresh, OpenAICompatibleProvider)
    assert fresh is not first and not fresh.http_client.is_closed


def test_a_changed_config_under_the_same_key_replaces_the_client() -> None:
    first = provider_for(CONFIG, cache_key="7:1")
    rotated = ConnectionConfig(kind="sandbox", base_url=CONFIG.base_url, api_key="r" * 20)
    second = provider_for(rotated, cache_key="7:1")
    assert isinstance(first, OpenAICompatibleProvider)
    assert isinstance(second, OpenAICompatibleProvider)
    assert second is not first and first.closed and not second.closed
    assert second.http_client.headers["authorization"] == "Bearer " + "r" * 20


def test_unknown_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown provider kind"):
        ConnectionConfig(kind="anthropic", base_url="https://example.com", api_key="k")
