"""The bridge from a stored connection to a provider client (the one place that decrypts keys)."""

from __future__ import annotations

from django.conf import settings

from jobs.models import ProviderConnection
from jobs.providers import ConnectionConfig, Provider, provider_for


def config_for(
    connection: ProviderConnection,
    *,
    read_timeout: float | None = None,
    max_retries: int | None = None,
) -> ConnectionConfig:
    return ConnectionConfig(
        kind=connection.kind,
        base_url=connection.base_url,
        api_key=connection.get_api_key(),
        organization=connection.organization,
        project=connection.project,
        api_version=connection.api_version,
        timeout_connect=settings.PROVIDER_CONNECT_TIMEOUT,
        timeout_read=settings.PROVIDER_READ_TIMEOUT if read_timeout is None else read_timeout,
        max_retries=settings.PROVIDER_MAX_RETRIES if max_retries is None else max_retries,
    )


def provider_for_connection(
    connection: ProviderConnection,
    *,
    read_timeout: float | None = None,
    max_retries: int | None = None,
) -> Provider:
    """The pooled client of a connection; interactive callers (a page waiting for the answer)
    may ask for a shorter read timeout and fewer retries, and get a client of their own."""
    # Keyed by the row's update time, so an edited key or URL gets a fresh client.
    cache_key = (
        f"{connection.pk}:{connection.updated_at.timestamp() if connection.updated_at else 0}"
    )
    if read_timeout is not None or max_retries is not None:
        cache_key += f":{read_timeout}:{max_retries}"
    config = config_for(connection, read_timeout=read_timeout, max_retries=max_retries)
    return provider_for(config, cache_key=cache_key)
