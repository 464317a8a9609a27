"""Sandbox-only controls (not part of OpenAI's API): fault injection, response profile and
outgoing webhooks, authenticated with the same API keys."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from sandbox import services
from sandbox.api import Caller, endpoint, parse_json
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
    }
