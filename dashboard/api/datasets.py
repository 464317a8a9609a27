"""Datasets: metadata, the file itself, and uploads (a training script's own files)."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import reverse
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile
from pydantic import Field

from dashboard.api.auth import caller_of, require_write
from dashboard.api.schemas import DatasetOut, DatasetPage, Error
from datasets import services
from datasets.incoming import UploadRejected
from datasets.models import Dataset
from datasets.selectors import dataset_families
from datasets.views import dataset_file_response
from jobs.services import JobError

router = Router(tags=["datasets"])


def dataset_out(dataset: Dataset) -> dict[str, Any]:
    return {
        "id": dataset.pk,
        "url": reverse("datasets:detail", args=[dataset.pk]),
        "name": dataset.name,
        "description": dataset.description,
        "tags": list(dataset.tags),
        "format": dataset.format,
        "status": dataset.status,
        "size": dataset.size,
        "sha256": dataset.sha256,
        "line_count": dataset.line_count,
        "n_examples": dataset.n_examples,
        "valid_for": {v.family: v.valid for v in dataset_families(dataset)},
        "uploaded_at": dataset.uploaded_at,
        "download": reverse("api-v1:datasets_file", args=[dataset.pk]),
    }


class DatasetQuery(Schema):
    q: str = Field("", max_length=200, description="Text in the name.")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10**9)


FIELDS = (
    "id", "name", "description", "tags", "format", "status", "size", "sha256", "line_count",
    "n_examples", "validity", "uploaded_at",
)  # fmt: skip


@router.get("/datasets", response={200: DatasetPage, 401: Error}, summary="List datasets")
def datasets_list(request: HttpRequest, query: Query[DatasetQuery]) -> dict[str, Any]:
    datasets = Dataset.objects.only(*FIELDS).order_by("-uploaded_at", "-id")
    text = query.q.replace("\x00", "").strip()
    if text:
        datasets = datasets.filter(name__icontains=text)
    page = datasets[query.offset : query.offset + query.limit]
    return {"count": datasets.count(), "results": [dataset_out(d) for d in page]}


@router.get(
    "/datasets/{dataset_id}", response={200: DatasetOut, 401: Error, 404: Error}, summary="One"
)
def datasets_detail(request: HttpRequest, dataset_id: int) -> dict[str, Any]:
    return dataset_out(get_object_or_404(Dataset.objects.only(*FIELDS), pk=_pk(dataset_id)))


def _pk(value: int) -> int:
    if not 1 <= value <= 2**63 - 1:
        raise Http404("No such dataset.")
    return value


@router.get(
    "/datasets/{dataset_id}/file",
    response={200: None, 401: Error, 404: Error},
    url_name="datasets_file",
    summary="The dataset's file (JSON Lines)",
    openapi_extra={
        "responses": {
            200: {"description": "The file", "content": {"application/jsonl": {"schema": {}}}}
        }
    },
)
def datasets_file(request: HttpRequest, dataset_id: int) -> FileResponse:
    return dataset_file_response(get_object_or_404(Dataset, pk=_pk(dataset_id)))


@router.post(
    "/datasets",
    response={200: DatasetOut, 201: DatasetOut, 400: Error, 401: Error, 403: Error},
    summary="Upload a dataset file (the same content again returns the stored dataset)",
)
def datasets_upload(
    request: HttpRequest,
    file: File[UploadedFile],
    name: Form[str] = "",
    description: Form[str] = "",
) -> Status[dict[str, Any]]:
    require_write(request)
    if len(name) > 200 or len(description) > 10_000:
        raise JobError("The name or description is too long.", field="name")
    try:
        outcome = services.dataset_create_from_upload(
            upload=file, name=name, description=description, uploaded_by=caller_of(request).user
        )
    except UploadRejected as exc:
        raise JobError(exc.message, field="file") from exc
    return Status(201 if outcome.created else 200, dataset_out(outcome.dataset))
