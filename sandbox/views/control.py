"""Sandbox-only controls (not part of OpenAI's API): fault injection, response profile,
outgoing webhooks and the chat completion log, authenticated with the same API keys."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from sandbox import completion_log, services
from sandbox.api import Caller, endpoint, parse_json, rate_limit_of
from sandbox.models import SandboxFault


def _fault_json(fault: SandboxFault) -> dict[str, Any]:
    return {
        "id": fault.pk,
        "kinds": fault.kinds,
        "path": fault.path_regex,
        "remaining": fault.remaining,
        "rate": fault.rate,
        "retry_after": fault.retry_after,
        "hang_seconds": fault.hang_seconds,
        "injected": fault.injected,
    }


@endpoint("GET", "POST", "DELETE", faults=False)
def faults(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    if request.method == "POST":
        return _fault_json(services.fault_create(caller=caller, body=parse_json(request)))
    if request.method == "DELETE":
        return {"deleted": services.faults_clear(caller=caller)}
    items = SandboxFault.objects.filter(owner=caller.owner).order_by("pk")
    return {"object": "list", "data": [_fault_json(f) for f in items], "has_more": False}


@endpoint("GET", "POST", faults=False)
def account(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    account = caller.account
    if request.method == "POST":
        account = services.account_update(caller=caller, body=parse_json(request))
    return {
        "organization_id": caller.organization_id,
        "profile": account.profile,
        "webhook_url": account.webhook_url,
        "webhook_secret_set": bool(account.webhook_secret),
        "rate_limit": account.rate_limit,
        "rate_limit_effective": rate_limit_of(account),
        "rate_limit_window": settings.SANDBOX_RATE_LIMIT_WINDOW,
    }


@endpoint("GET", "DELETE", faults=False)
def completions(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    """The caller's chat completion requests counted per (model, prompt_sha256, status_code),
    ``?model=`` to keep one model; DELETE clears them (see ``sandbox.completion_log``)."""
    if request.method == "DELETE":
        return {"deleted": completion_log.clear(caller.owner)}
    data = completion_log.counts(caller.owner, model=request.GET.get("model") or None)
    return {"object": "list", "data": data, "has_more": False}
