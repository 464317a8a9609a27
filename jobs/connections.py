"""The bridge from a stored connection to a provider client (the one place that decrypts keys)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from jobs.models import ProviderConnection
from jobs.providers import ConnectionConfig, Provider, provider_for


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    max_retries: int


def interactive_timeouts() -> Timeouts:
    """For the calls a page waits on (the connection test, the playground): one attempt, no
    retry, connecting and reading within ``PROVIDER_INTERACTIVE_TIMEOUT`` seconds in all
    (httpx's connect timeout plus its read timeout). A retry would only split the same budget."""
    budget = settings.PROVIDER_INTERACTIVE_TIMEOUT
    connect = min(settings.PROVIDER_CONNECT_TIMEOUT, budget / 4)
    return Timeouts(connect=connect, read=budget - connect, max_retries=0)


def config_for(
    connection: ProviderConnection,
    *,
    read_timeout: float | None = None,
    max_retries: int | None = None,
    interactive: bool = False,
) -> ConnectionConfig:
    connect = settings.PROVIDER_CONNECT_TIMEOUT
    if interactive:
        bounded = interactive_timeouts()
        connect, read_timeout, max_retries = bounded.connect, bounded.read, bounded.max_retries
    return ConnectionConfig(
        kind=connection.kind,
        base_url=connection.base_url,
        api_key=connection.get_api_key(),
        organization=connection.organization,
        project=connection.project,
        api_version=connection.api_version,
        timeout_connect=connect,
        timeout_read=settings.PROVIDER_READ_TIMEOUT if read_timeout is None else read_timeout,
        max_retries=settings.PROVIDER_MAX_RETRIES if max_retries is None else max_retries,
    )


def provider_for_connection(
    connection: ProviderConnection,
    *,
    read_timeout: float | None = None,
    max_retries: int | None = None,
    interactive: bool = False,
) -> Provider:
    """The pooled client of a connection; ``interactive`` callers (a page waiting for the
    answer) get a client of their own with short timeouts and no retry (``interactive_timeouts``).
    ``read_timeout``/``max_retries`` override the settings for other callers."""
    # Keyed by the row's update time, so an edited key or URL gets a fresh client.
    cache_key = (
        f"{connection.pk}:{connection.updated_at.timestamp() if connection.updated_at else 0}"
    )
    if interactive:
        cache_key += ":interactive"
    elif read_timeout is not None or max_retries is not None:
        cache_key += f":{read_timeout}:{max_retries}"
    config = config_for(
        connection, read_timeout=read_timeout, max_retries=max_retries, interactive=interactive
    )
    return provider_for(config, cache_key=cache_key)
