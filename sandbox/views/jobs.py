from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest

from sandbox import engine, services
from sandbox.api import (
    ApiError,
    Caller,
    after_anchor,
    after_param,
    endpoint,
    int_param,
    keyset_page,
    list_body,
    parse_json,
    unknown_cursor,
)
from sandbox.models import SandboxJob
from sandbox.requests import parse_job_request
from sandbox.serializers import checkpoint_json, event_json, job_json

_METADATA_PARAM = re.compile(r"metadata\[(.+)\]", re.DOTALL)


def _job(caller: Caller, job_id: str) -> SandboxJob:
    if not SandboxJob.objects.filter(pk=job_id, owner=caller.owner, api="openai").exists():
        raise ApiError(
            404,
            f"Could not find fine-tune: {job_id}",
            param="fine_tuning_job_id",
            code="fine_tune_not_found",
        )
    return engine.job_advance(job_id)


@endpoint("GET", "POST")
def jobs(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    if request.method == "POST":
        job = services.job_create(caller=caller, request=parse_job_request(parse_json(request)))
        return job_json(engine.job_advance(job.id), caller)
    limit = int_param(request, "limit", 20, 1, 100)
    after = after_param(request)
    owned = SandboxJob.objects.filter(owner=caller.owner, api="openai")
    queryset = owned
    for key, value in request.GET.items():
        match = _METADATA_PARAM.fullmatch(key)
        if match:
            # Containment compares the key literally: never ORM lookup syntax (`run__gt`).
            queryset = queryset.filter(metadata__contains={match.group(1): value})
        elif key == "metadata" and value == "null":
            queryset = queryset.filter(metadata__isnull=True)
    ordering = ("-created_at", "-id")
    if after is not None:
        anchor = owned.filter(pk=after).first()
        if anchor is None:
            raise unknown_cursor(after)
        queryset = after_anchor(queryset, anchor, ordering)
    page, has_more = keyset_page(queryset.order_by(*ordering), limit)
    return list_body([job_json(j, caller) for j in engine.jobs_advance(page)], has_more)


@endpoint("GET")
def job_detail(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    return job_json(_job(caller, job_id), caller)


@endpoint("POST")
def job_cancel(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    _job(caller, job_id)
    return job_json(engine.job_cancel(job_id), caller)


@endpoint("POST")
def job_pause(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    _job(caller, job_id)
    return job_json(engine.job_pause(job_id), caller)


@endpoint("POST")
def job_resume(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    _job(caller, job_id)
    return job_json(engine.job_resume(job_id), caller)


@endpoint("GET")
def job_events(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    job = _job(caller, job_id)
    limit = int_param(request, "limit", 20, 1, 10000)
    after = after_param(request)
    queryset = job.events.order_by("-seq")
    if after is not None:
        anchor = job.events.filter(id=after).values_list("seq", flat=True).first()
        if anchor is None:
            raise unknown_cursor(after)
        queryset = queryset.filter(seq__lt=anchor)
    page, has_more = keyset_page(queryset, limit)
    return list_body([event_json(e, caller) for e in page], has_more)


@endpoint("GET")
def job_checkpoints(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    job = _job(caller, job_id)
    limit = int_param(request, "limit", 10, 1, 100)
    after = after_param(request)
    ordering = ("-step_number",)  # unique per job
    queryset = job.checkpoints.order_by(*ordering)
    if after is not None:
        anchor = job.checkpoints.filter(pk=after).first()
        if anchor is None:
            raise unknown_cursor(after)
        queryset = after_anchor(queryset, anchor, ordering)
    page, has_more = keyset_page(queryset, limit)
    data = [checkpoint_json(c) for c in page]
    return list_body(
        data,
        has_more,
        first_id=data[0]["id"] if data else None,
        last_id=data[-1]["id"] if data else None,
    )
