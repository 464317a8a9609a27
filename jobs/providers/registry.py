"""Process-wide cache of provider clients, so a worker reuses pooled connections."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from jobs.providers.base import Provider
from jobs.providers.config import ConnectionConfig
from jobs.providers.openai_compat import OpenAICompatibleProvider
from jobs.providers.parameters import Parameter, Traits
from jobs.providers.selfhosted import SelfHostedRuns
from jobs.providers.together import TogetherProvider

# A worker talks to a handful of connections; old cache keys (a connection edited, so its
# key changed) age out instead of holding sockets forever.
MAX_CACHED_PROVIDERS = 32

_lock = threading.Lock()
Client = OpenAICompatibleProvider | TogetherProvider
_cache: OrderedDict[str, Client] = OrderedDict()
# The one place a provider kind picks code: every kind not listed speaks OpenAI's REST API
# (OpenAI, Azure OpenAI, the sandbox's OpenAI surface); ConnectionConfig rejects unknown ones.
ADAPTERS: dict[str, type[TogetherProvider]] = {"together": TogetherProvider}
# Kinds with no provider API (``Traits.hosted`` is False): declarations only, never a client.
DECLARED_ONLY: dict[str, type[SelfHostedRuns]] = {"self_hosted": SelfHostedRuns}
Adapter = type[OpenAICompatibleProvider] | type[TogetherProvider] | type[SelfHostedRuns]


def _adapter(kind: str) -> Adapter:
    return DECLARED_ONLY.get(kind) or ADAPTERS.get(kind) or OpenAICompatibleProvider


def traits(kind: str) -> Traits:
    """What the adapter of connections of ``kind`` declares (``parameters.Traits``)."""
    return _adapter(kind).traits


def declared_parameters(kind: str) -> tuple[Parameter, ...]:
    """The training parameters the adapter of ``kind`` declares (``parameters.py``)."""
    return _adapter(kind).traits.parameters


def parameters_for(
    kind: str, limits: dict[str, Any] | None, *, method: str, training_type: str = "lora"
) -> tuple[Parameter, ...]:
    """The declared parameters within one base model's limits (as its provider lists them;
    empty limits: the declaration's own)."""
    return _adapter(kind).parameters_for(limits or {}, method=method, training_type=training_type)


def families() -> dict[str, str]:
    """Every catalog family (a provider whose datasets and models Tuneboard checks) and its
    label, in a stable order."""
    adapters: list[type[OpenAICompatibleProvider] | type[TogetherProvider]] = [
        OpenAICompatibleProvider,
        *ADAPTERS.values(),
    ]
    return {a.traits.family: a.traits.label for a in adapters}


def _build(config: ConnectionConfig) -> Client:
    adapter = ADAPTERS.get(config.kind)
    return adapter(config) if adapter is not None else OpenAICompatibleProvider(config)


def provider_for(config: ConnectionConfig, *, cache_key: str | None = None) -> Provider:
    """The client for ``config``; with a ``cache_key`` (e.g. ``f"{pk}:{updated_at}"``) the
    same pooled client is returned until ``close_all()`` or eviction."""
    if cache_key is None:
        return _build(config)
    stale: list[Client] = []
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
