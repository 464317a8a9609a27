"""First-run connections, made when core's ``tuneboard_bootstrap`` command sends its signal."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from jobs.models import ProviderConnection
from jobs.services import connection_ensure


def connections_bootstrap(sender: object, *, sandbox_url: str | None = None, **kwargs: Any) -> None:
    """A 'Sandbox' connection to this instance's sandbox and an 'OpenAI' one when a key is set;
    both kept in step with the environment on every run."""
    if sandbox_url and settings.SANDBOX_ENABLED:
        connection_ensure(
            name="Sandbox",
            kind=ProviderConnection.Kind.SANDBOX,
            base_url=str(sandbox_url),
            api_key=settings.SANDBOX_API_KEYS[0],
        )
    if settings.OPENAI_API_KEY:
        connection_ensure(
            name="OpenAI",
            kind=ProviderConnection.Kind.OPENAI,
            base_url=settings.OPENAI_BASE_URL,
            api_key=settings.OPENAI_API_KEY,
        )
