"""The bridge from a stored connection to a provider client (the one place that decrypts keys)."""

from __future__ import annotations

from django.conf import settings

from jobs.models import ProviderConnection
from jobs.providers import ConnectionConfig, Provider, provider_for


def config_for(connection: ProviderConnection) -> ConnectionConfig:
    return ConnectionConfig(
        kind=connection.kind,
        base_url=connection.base_url,
        api_key=connection.get_api_key(),
        organization=connection.organization,
        project=connection.project,
        api_version=connection.api_version,
        timeout_connect=settings.PROVIDER_CONNECT_TIMEOUT,
        timeout_read=settings.PROVIDER_READ_TIMEOUT,
        max_retries=settings.PROVIDER_MAX_RETRIES,
    )


def provider_for_connection(connection: ProviderConnection) -> Provider:
    # Keyed by the row's update time, so an edited key or URL gets a fresh client.
    cache_key = (
        f"{connection.pk}:{connection.updated_at.timestamp() if connection.updated_at else 0}"
    )
    return provider_for(config_for(connection), cache_key=cache_key)
