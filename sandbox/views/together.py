"""Together AI's fine-tuning and files API at ``/sandbox/together/v1/`` (see
``sandbox.together``). Same keys, faults, rate limits and engine as the OpenAI surface."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.files import File
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from sandbox import engine, ids, services, training_data
from sandbox import together as tg
from sandbox.api import ApiError, Caller, endpoint, parse_json
from sandbox.models import SandboxEvent, SandboxFile, SandboxJob

# The official SDK uploads in three steps: ``POST /files`` answers 302 with a presigned
# ``Location`` and the new file's id, the content is PUT there (no API key: the URL is the
# permission), then ``POST /files/{id}/preprocess`` returns the file.
PUT_SALT = "sandbox.together.put"
PUT_MAX_AGE = 3600


def _job(caller: Caller, job_id: str) -> SandboxJob:
    if not SandboxJob.objects.filter(pk=job_id, owner=caller.owner, api="together").exists():
        raise ApiError(404, f"Fine-tune job {job_id} not found", param="id", code="not_found")
    return engine.job_advance(job_id)


@endpoint("GET", "POST")
def fine_tunes(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    if request.method == "POST":
        create = tg.parse_create(parse_json(request))
        job = services.job_create(
            caller=caller,
            request=create.request,
            api="together",
            model=create.model.name,
            provider_params=create.params,
            # Together's description gives job ids the uuid format.
            job_id=str(uuid.uuid4()),
        )
        return tg.job_json(engine.job_advance(job.id))
    owned = SandboxJob.objects.filter(owner=caller.owner, api="together").order_by("-created_at")
    return {"data": [tg.job_json(j) for j in engine.jobs_advance(list(owned))]}


@endpoint("GET", "DELETE")
def fine_tune_detail(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    job = _job(caller, job_id)
    if request.method == "DELETE":
        if job.status not in engine.TERMINAL:
            raise ApiError(
                400, "Only a finished, failed or cancelled job can be deleted", param="id"
            )
        job.delete()
        return {"message": f"Fine-tune job {job_id} deleted"}
    return tg.job_json(job)


@endpoint("POST")
def fine_tune_cancel(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    _job(caller, job_id)
    return tg.job_json(engine.job_cancel(job_id))


@endpoint("GET")
def fine_tune_events(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    job = _job(caller, job_id)
    events = job.events.exclude(type="metrics").order_by("seq")
    return {"data": [tg.event_json(e, job) for e in events]}


@endpoint("GET")
def fine_tune_checkpoints(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    job = _job(caller, job_id)
    return {"data": [tg.checkpoint_json(c, job) for c in job.checkpoints.order_by("-step_number")]}


def _step_bound(request: HttpRequest, body: dict[str, Any], key: str) -> int | None:
    # The spec puts the bounds in a JSON body of the GET, the official SDK in the query.
    value: Any = request.GET.get(key, body.get(key))
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ApiError(400, f"{key} must be an integer", param=key) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key} must be an integer", param=key)
    return value


@endpoint("GET")
def fine_tune_metrics(request: HttpRequest, caller: Caller, job_id: str) -> dict[str, Any]:
    job = _job(caller, job_id)
    body = parse_json(request, allow_empty=True)
    low = _step_bound(request, body, "global_step_from")
    high = _step_bound(request, body, "global_step_to")
    rows = SandboxEvent.objects.filter(job=job, type="metrics").order_by("seq")
    metrics = []
    for data in rows.values_list("data", flat=True):
        row = tg.metric_json(data or {}, job)
        step = row and row["train/global_step"]
        if row is None or (low is not None and step < low) or (high is not None and step > high):
            continue
        metrics.append(row)
    return {"metrics": metrics}


@endpoint("POST")
def estimate_price(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    create = tg.parse_create(parse_json(request))
    file = SandboxFile.objects.filter(
        pk=create.request.training_file, owner=caller.owner, deleted=False
    ).first()
    if file is None:
        raise ApiError(400, f"No such file: {create.request.training_file}", param="training_file")
    facts = training_data.analyze(
        file, model=create.model.name, method=create.request.method, rules="together"
    )
    return tg.estimate_price(create, facts.tokens_per_epoch)


@endpoint("GET")
def models_supported(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    return {"models": [m.name for m in tg.MODELS]}


@endpoint("GET")
def models_limits(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    return tg.limits_json(tg.model_of(request.GET.get("model_name")))


@endpoint("GET", "POST")
def files(request: HttpRequest, caller: Caller) -> Any:
    if request.method == "POST":
        return _presigned_upload(request, caller)
    owned = SandboxFile.objects.filter(owner=caller.owner, deleted=False).order_by("-created_at")
    return {"data": [tg.file_json(f) for f in owned]}


def _presigned_upload(request: HttpRequest, caller: Caller) -> HttpResponse:
    name = request.POST.get("file_name") or ""
    purpose = request.POST.get("purpose")
    services.check_file_name(purpose=purpose, filename=name)
    file_id = ids.file_id()
    token = signing.dumps(
        {"id": file_id, "owner": caller.owner, "name": name, "purpose": purpose}, salt=PUT_SALT
    )
    response = HttpResponse(status=302)
    response["Location"] = request.build_absolute_uri(reverse("sandbox:together_put", args=[token]))
    response["X-Together-File-Id"] = file_id
    return response


@login_not_required
@csrf_exempt
def put_content(request: HttpRequest, token: str) -> HttpResponse:
    if request.method != "PUT":
        return JsonResponse({"error": {"message": "PUT only"}}, status=405)
    try:
        grant = signing.loads(token, salt=PUT_SALT, max_age=PUT_MAX_AGE)
    except signing.BadSignature:
        return JsonResponse({"error": {"message": "Invalid or expired upload URL"}}, status=403)
    try:
        services.file_store(
            file_id=grant["id"], owner=grant["owner"], filename=grant["name"],
            purpose=grant["purpose"], content=File(request, name=grant["name"]),
        )  # fmt: skip
    except ApiError as exc:
        return exc.response()
    return HttpResponse(status=200)


@endpoint("POST")
def file_preprocess(request: HttpRequest, caller: Caller, file_id: str) -> dict[str, Any]:
    return tg.file_json(services.file_get(caller=caller, file_id=file_id))


@endpoint("POST")
def files_upload(request: HttpRequest, caller: Caller) -> dict[str, Any]:
    upload = request.FILES.get("file")
    name = request.POST.get("file_name")
    if upload is not None and name:
        upload.name = name
    file = services.file_create(
        caller=caller, upload=upload, purpose=request.POST.get("purpose"), expires_after=None
    )
    return tg.file_json(file)


@endpoint("GET", "DELETE")
def file_detail(request: HttpRequest, caller: Caller, file_id: str) -> dict[str, Any]:
    if request.method == "DELETE":
        file = services.file_delete(caller=caller, file_id=file_id)
        return {"id": file.id, "deleted": True}
    return tg.file_json(services.file_get(caller=caller, file_id=file_id))


@endpoint("GET")
def file_content(request: HttpRequest, caller: Caller, file_id: str) -> HttpResponse:
    file = services.file_get(caller=caller, file_id=file_id)
    return FileResponse(file.content.open("rb"), content_type="application/octet-stream")
