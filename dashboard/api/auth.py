"""Bearer tokens (``core.ApiToken``): who calls, and whether the token may write. Every request
with a valid token is attributed in the audit log."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from core.services import ApiCaller, api_token_authenticate, audit_record


class TokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiCaller | None:
        caller = api_token_authenticate(raw=token.strip())
        if caller is None:
            return None
        audit_record(
            actor=caller.user,
            action="api_request",
            obj=caller.token,
            detail={"method": request.method, "path": request.path[:300]},
        )
        # Views and services attribute their writes to the token's owner.
        request.user = caller.user
        return caller


def caller_of(request: HttpRequest) -> ApiCaller:
    caller: Any = getattr(request, "auth", None)
    assert isinstance(caller, ApiCaller)
    return caller


def require_write(request: HttpRequest) -> ApiCaller:
    caller = caller_of(request)
    if not caller.can_write:
        raise HttpError(
            403,
            "This token is read-only (a read-only token, or its owner's role allows no "
            "changes): make a read-write token as a member.",
        )
    return caller
