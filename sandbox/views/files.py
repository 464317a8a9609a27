from __future__ import annotations

import json
from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse

from sandbox import engine, services
from sandbox.api import ApiError, Caller, cursor_page, endpoint, int_param, list_body
from sandbox.models import SandboxFile
from sandbox.serializers import file_json, upload_json


@endpoint("GET", "POST")
def files(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    if request.method == "POST":
        anchor = request.POST.get("expires_after[anchor]")
        seconds = request.POST.get("expires_after[seconds]")
        if "expires_after" in request.POST:  # the same field sent as one JSON part
            try:
                expires = json.loads(request.POST["expires_after"])
            except ValueError:
                raise ApiError(
                    400, "invalid expires_after: expected an object", param="expires_after"
                ) from None
            if not isinstance(expires, dict):
                raise ApiError(
                    400, "invalid expires_after: expected an object", param="expires_after"
                )
            anchor, seconds = expires.get("anchor"), expires.get("seconds")
        file = services.file_create(
            caller=caller,
            upload=request.FILES.get("file"),
            purpose=request.POST.get("purpose"),
            expires_anchor=anchor,
            expires_seconds=seconds,
        )
        return file_json(file)
    order = request.GET.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ApiError(400, "invalid order: 'asc' or 'desc'", param="order")
    limit = int_param(request, "limit", 10000, 1, 10000)
    queryset = SandboxFile.objects.filter(owner=caller.owner, deleted=False)
    if request.GET.get("purpose"):
        queryset = queryset.filter(purpose=request.GET["purpose"])
    sign = "" if order == "asc" else "-"
    items = list(queryset.order_by(f"{sign}created_at", f"{sign}id"))
    page, has_more = cursor_page(items, request.GET.get("after"), limit, key=lambda f: f.id)
    data = [file_json(f) for f in page]
    # The spec requires first_id/last_id as strings even for an empty page.
    return list_body(
        data,
        has_more,
        first_id=data[0]["id"] if data else "",
        last_id=data[-1]["id"] if data else "",
    )


@endpoint("GET", "DELETE")
def file_detail(request: HttpRequest, caller: Caller, file_id: str) -> dict[str, Any]:
    if request.method == "DELETE":
        file = services.file_delete(caller=caller, file_id=file_id)
        return {"id": file.id, "object": "file", "deleted": True}
    return file_json(services.file_get(caller=caller, file_id=file_id))


@endpoint("GET")
def file_content(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    file = services.file_get(caller=caller, file_id=file_id)
    if file.purpose == "fine-tune-results":
        # The real API serves results base64-encoded; the realism profile does the same.
        body = engine.results_content(file, base64_encoded=caller.realism)
        return HttpResponse(body, content_type="application/octet-stream")
    # Whatever the Accept header says (the SDK sends application/binary): the raw bytes.
    return FileResponse(file.content.open("rb"), content_type="application/octet-stream")


@endpoint("POST")
def uploads(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    from sandbox.api import parse_json

    return upload_json(services.upload_create(caller=caller, body=parse_json(request)))


@endpoint("POST")
def upload_parts(request: HttpRequest, caller: Caller, upload_id: str) -> dict[str, Any]:
    part = services.upload_part_add(
        caller=caller, upload_id=upload_id, data=request.FILES.get("data")
    )
    return {
        "object": "upload.part",
        "id": part.id,
        "created_at": part.created_at,
        "upload_id": upload_id,
    }


@endpoint("POST")
def upload_complete(request: HttpRequest, caller: Caller, upload_id: str) -> dict[str, Any]:
    from sandbox.api import parse_json

    upload = services.upload_complete(caller=caller, upload_id=upload_id, body=parse_json(request))
    return upload_json(upload)


@endpoint("POST")
def upload_cancel(request: HttpRequest, caller: Caller, upload_id: str) -> dict[str, Any]:
    return upload_json(services.upload_cancel(caller=caller, upload_id=upload_id))
