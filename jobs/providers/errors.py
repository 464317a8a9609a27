"""Provider failures, classified so callers can decide what to do without knowing HTTP.

``str(error)`` is meant to be shown to users: it carries the provider's own message (from its
``{"error": {...}}`` envelope when there is one) and never the API key.
"""

from __future__ import annotations

from typing import Any


class ProviderError(Exception):
    """Any failure talking to a provider; subclasses say whether retrying later can help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.param = param
        self.request_id = request_id
        self.error_type = error_type

    def __str__(self) -> str:
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.code:
            details.append(f"code: {self.code}")
        if self.param:
            details.append(f"param: {self.param}")
        if self.request_id:
            details.append(f"request id: {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only details would be lost by the default pickling of exceptions (Celery
        # results, multiprocessing); this keeps them.
        return (self.__class__, (self.message,), self.__dict__.copy())


class TransientProviderError(ProviderError):
    """Network trouble, timeouts, 408/409/429/5xx: still failing after every retry."""


class OutcomeUnknownError(TransientProviderError):
    """A request that must not be repeated blindly (a create) failed after it may have reached
    the provider: the connection dropped after sending, the answer timed out, or a 5xx came
    back. The provider may or may not have acted; look before doing it again."""


class NotFoundError(ProviderError):
    """404: the file, job or model does not exist (or is not visible to this key)."""


class AuthError(ProviderError):
    """401/403: the key is wrong, revoked, or lacks permission."""


class BadRequestError(ProviderError):
    """Any other 4xx: the request itself is wrong; retrying it unchanged will not help."""


def error_class_for_status(status: int) -> type[ProviderError]:
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status in (408, 409, 429) or status >= 500:
        return TransientProviderError
    if 400 <= status < 500:
        return BadRequestError
    return ProviderError
