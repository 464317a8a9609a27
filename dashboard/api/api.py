"""The API object: routers, auth and the error shape ({"detail", "errors": [{field, message}]})."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError

from dashboard.api import datasets, runs, sweeps
from dashboard.api.auth import TokenAuth
from jobs.selfhosted import ReportConflict
from jobs.services import JobError, LaunchRejected

api = NinjaAPI(
    title="Tuneboard API",
    version="1",
    description="Runs, metrics, checkpoints, events, datasets and sweeps. Authenticate with a personal "
    "API token (Account → API tokens): `Authorization: Bearer tb_…`. Read-only tokens read; "
    "read-write tokens of members also create and report self-hosted runs.",
    auth=TokenAuth(),
    urls_namespace="api-v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", runs.router)
api.add_router("", datasets.router)
api.add_router("", sweeps.router)


def _field(location: object) -> str:
    parts = [str(p) for p in location if p not in ("body", "query", "path", "form", "file")]  # type: ignore[attr-defined]
    return ".".join(parts[1:] if parts and parts[0] in ("body", "query", "query_params") else parts)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "invalid"))}
        for e in exc.errors
    ]
    first = errors[0] if errors else {"field": "", "message": "invalid"}
    detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


@api.exception_handler(JobError)
def rejected(request: HttpRequest, exc: JobError) -> HttpResponse:
    status = 409 if isinstance(exc, ReportConflict) else 400
    errors = [{"field": exc.field or "", "message": exc.message}]
    return api.create_response(request, {"detail": exc.message, "errors": errors}, status=status)


@api.exception_handler(LaunchRejected)
def refused(request: HttpRequest, exc: LaunchRejected) -> HttpResponse:
    errors = [{"field": p.field or "", "message": p.message} for p in exc.problems]
    return api.create_response(request, {"detail": exc.message, "errors": errors}, status=400)
