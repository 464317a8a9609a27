from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse

from sandbox import engine, services
from sandbox.api import (
    Caller,
    after_anchor,
    after_param,
    choice_param,
    endpoint,
    int_param,
    keyset_page,
    list_body,
    unknown_cursor,
)
from sandbox.models import SandboxFile
from sandbox.requests import parse_form_expires_after
from sandbox.serializers import file_json, upload_json


@endpoint("GET", "POST")
def files(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    if request.method == "POST":
        file = services.file_create(
            caller=caller,
            upload=request.FILES.get("file"),
            purpose=request.POST.get("purpose"),
            expires_after=parse_form_expires_after(request.POST),
        )
        return file_json(file, caller)
    order = choice_param(request, "order", "desc", ("asc", "desc"))
    limit = int_param(request, "limit", 10000, 1, 10000)
    after = after_param(request)
    owned = SandboxFile.objects.filter(owner=caller.owner)
    queryset = owned.filter(deleted=False)
    if request.GET.get("purpose"):
        queryset = queryset.filter(purpose=request.GET["purpose"])
    sign = "" if order == "asc" else "-"
    ordering = (f"{sign}created_at", f"{sign}id")
    if after is not None:
        # A file deleted since the previous page still marks the place.
        anchor = owned.filter(pk=after).first()
        if anchor is None:
            raise unknown_cursor(after)
        queryset = after_anchor(queryset, anchor, ordering)
    page, has_more = keyset_page(queryset.order_by(*ordering), limit)
    data = [file_json(f, caller) for f in page]
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
    return file_json(services.file_get(caller=caller, file_id=file_id), caller)


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

    return upload_json(services.upload_create(caller=caller, body=parse_json(request)), caller)


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
    return upload_json(upload, caller)


@endpoint("POST")
def upload_cancel(request: HttpRequest, caller: Caller, upload_id: str) -> dict[str, Any]:
    return upload_json(services.upload_cancel(caller=caller, upload_id=upload_id), caller)
