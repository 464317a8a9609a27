"""Process-wide cache of provider clients, so a worker reuses pooled connections."""

from __future__ import annotations

import threading
from collections import OrderedDict

from jobs.providers.base import Provider
from jobs.providers.config import ConnectionConfig
from jobs.providers.openai_compat import OpenAICompatibleProvider

# A worker talks to a handful of connections; old cache keys (a connection edited, so its
# key changed) age out instead of holding sockets forever.
MAX_CACHED_PROVIDERS = 32

_lock = threading.Lock()
_cache: OrderedDict[str, OpenAICompatibleProvider] = OrderedDict()


def _build(config: ConnectionConfig) -> OpenAICompatibleProvider:
    # Every kind Tuneboard knows speaks OpenAI's REST API; ConnectionConfig rejects others.
    return OpenAICompatibleProvider(config)


def provider_for(config: ConnectionConfig, *, cache_key: str | None = None) -> Provider:
    """The client for ``config``; with a ``cache_key`` (e.g. ``f"{pk}:{updated_at}"``) the
    same pooled client is returned until ``close_all()`` or eviction."""
    if cache_key is None:
        return _build(config)
    stale: list[OpenAICompatibleProvider] = []
    with _lock:
        cached = _cache.get(cache_key)
        if cached is not None and cached.config == config and not cached.closed:
            _cache.move_to_end(cache_key)
            return cached
        if cached is not None:
            stale.append(_cache.pop(cache_key))
        provider = _build(config)
        _cache[cache_key] = provider
        while len(_cache) > MAX_CACHED_PROVIDERS:
            stale.append(_cache.popitem(last=False)[1])
    for old in stale:  # outside the lock: closing may wait on sockets
        old.close()
    return provider


def close_all() -> None:
    """Close and forget every cached client (worker shutdown, tests)."""
    with _lock:
        providers = list(_cache.values())
        _cache.clear()
    for provider in providers:
        provider.close()
