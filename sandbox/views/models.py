from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from sandbox import completion_log, services
from sandbox.api import Caller, endpoint, model_not_found
from sandbox.catalog import BASE_MODELS, base_model
from sandbox.models import SandboxCheckpoint, SandboxModel
from sandbox.serializers import base_model_json, checkpoint_model_json, ft_model_json


@endpoint("GET")
def models(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    tuned = SandboxModel.objects.filter(owner=caller.owner, deleted=False).order_by("created")
    data = [base_model_json(m) for m in BASE_MODELS] + [ft_model_json(m) for m in tuned]
    return {"object": "list", "data": data}


@endpoint("GET", "DELETE")
def model_detail(request: HttpRequest, caller: Caller, model_id: str) -> dict[str, Any]:
    if request.method == "DELETE":
        services.model_delete(caller=caller, model_id=model_id)
        return {"id": model_id, "object": "model", "deleted": True}
    base = base_model(model_id)
    if base is not None and base.id == model_id:
        return base_model_json(base)
    tuned = SandboxModel.objects.filter(pk=model_id, owner=caller.owner, deleted=False).first()
    if tuned is not None:
        return ft_model_json(tuned)
    # A checkpoint's model is a model of its own that chat completions accept, until it is
    # deleted or pruned: then 404, as for any model (what Tuneboard checks before using one).
    checkpoint = SandboxCheckpoint.objects.filter(
        fine_tuned_model_checkpoint=model_id, job__owner=caller.owner
    ).first()
    if checkpoint is None:
        raise model_not_found(model_id)
    return checkpoint_model_json(checkpoint, owner=caller.owner)


@endpoint("POST", record=completion_log.start)
def chat_completions(request: HttpRequest, caller: Caller) -> Any:
    from django.http import StreamingHttpResponse

    from sandbox import chat
    from sandbox.api import parse_json

    body = parse_json(request)
    result, _ = chat.completion(caller, body)
    if body.get("stream"):
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        response = StreamingHttpResponse(
            chat.stream_events(result, include_usage), content_type="text/event-stream"
        )
        response["Cache-Control"] = "no-cache"
        return response
    return result
