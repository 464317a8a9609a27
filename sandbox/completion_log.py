"""The completion log: one ``SandboxCompletion`` row per chat completion request, so tests can
count the requests that reached the sandbox (GET/DELETE ``/sandbox/control/completions``).

What is counted: every ``POST …/chat/completions`` (under ``/sandbox/v1/`` and
``/sandbox/openai/v1/``) whose API key was accepted, with the status the sandbox answered:

* 200, streamed or not;
* the 4xx of a refused request (unknown model, invalid parameters, malformed JSON);
* an injected fault (``/sandbox/control/faults``) — faults are injected by the ``endpoint``
  decorator before the view runs, which records them too: 500/503, 429, 504 for ``hang`` (once
  the hold is over), 500 for ``drop`` (the client only sees its connection cut);
* 500 for an unexpected error.

Not counted: requests without a valid key (401), other methods (405), unknown URLs.

``model`` is the request's ``model`` when it is a string, else ""; ``prompt_sha256`` is the
sha256 of the canonical JSON of its ``messages`` (``sort_keys``, compact separators, UTF-8 as
is), or "" when the body is not a JSON object with ``messages``. The row is one INSERT after the
response is ready; a failure to write it is logged and never changes the response.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from django.db.models import Count
from django.http import HttpRequest
from django.http.response import HttpResponseBase

from sandbox.api import Caller
from sandbox.models import SandboxCompletion

log = logging.getLogger(__name__)

_MODEL_MAX = SandboxCompletion._meta.get_field("model").max_length


def prompt_sha256(messages: Any) -> str:
    """sha256 (hex) of ``json.dumps(messages, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False)``."""
    canonical = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _request_facts(request: HttpRequest) -> tuple[str, str, bool]:
    """(model, prompt_sha256, stream) of a chat completion request, as far as it can be read."""
    try:
        body = json.loads(request.body)
    except Exception:  # unreadable or not JSON: the view answers 400 (not logged here)
        return "", "", False
    if not isinstance(body, dict):
        return "", "", False
    model = body.get("model")
    model = model.replace("\x00", "")[:_MODEL_MAX] if isinstance(model, str) else ""
    digest = prompt_sha256(body["messages"]) if "messages" in body else ""
    return model, digest, bool(body.get("stream"))


def start(request: HttpRequest, caller: Caller) -> Callable[[HttpResponseBase], None]:
    """Called by ``endpoint`` once the caller is authenticated, before faults and the view (the
    body is read now, while the connection is whole); returns what records the response."""
    model, digest, stream = _request_facts(request)

    def finish(response: HttpResponseBase) -> None:
        SandboxCompletion.objects.create(
            owner=caller.owner,
            model=model,
            prompt_sha256=digest,
            status_code=response.status_code,
            stream=stream,
        )

    return finish


def counts(owner: str, model: str | None = None) -> list[dict[str, Any]]:
    """Requests per (model, prompt_sha256, status_code) of one owner."""
    rows = SandboxCompletion.objects.filter(owner=owner)
    if model:
        rows = rows.filter(model=model)
    grouped = (
        rows.values("model", "prompt_sha256", "status_code")
        .annotate(count=Count("id"))
        .order_by("model", "prompt_sha256", "status_code")
    )
    return [
        {
            "model": row["model"],
            "prompt_sha256": row["prompt_sha256"],
            "status_code": row["status_code"],
            "count": row["count"],
        }
        for row in grouped
    ]


def clear(owner: str) -> int:
    deleted, _ = SandboxCompletion.objects.filter(owner=owner).delete()
    return deleted
