"""Builders shared by the dataset tests: JSONL content, raw multipart bodies, uploads."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datasets import services
from datasets.models import BaseModel, Dataset

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
COOKBOOK = SHARED / "datasets" / "openai-cookbook"
XSS = "<img src=x onerror=alert(1)>"
GPT4O_MINI = "gpt-4o-mini-2024-07-18"
GPT4O = "gpt-4o-2024-08-06"
GPT35 = "gpt-3.5-turbo-0125"


def chat(i: int, *, system: str | None = None, answer: str | None = None) -> dict[str, Any]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [
        {"role": "user", "content": f"Question number {i}?"},
        {"role": "assistant", "content": answer or f"Answer number {i}."},
    ]
    return {"messages": messages}


def jsonl(items: Iterable[Any]) -> bytes:
    out = []
    for item in items:
        if isinstance(item, bytes):
            out.append(item)
        elif isinstance(item, str):
            out.append(item.encode())
        else:
            out.append(json.dumps(item, ensure_ascii=False).encode())
    return b"".join(line + b"\n" for line in out)


def chat_file(n: int, start: int = 0) -> bytes:
    return jsonl(chat(i) for i in range(start, start + n))


def multipart(
    fields: dict[str, str], *, file_name: str, content: bytes, boundary: str = "tbBoundary7MA4YWxk"
) -> tuple[bytes, str]:
    """A multipart body written by hand, so file names reach the server exactly as given
    (Django's test client keeps only their basename)."""
    parts = []
    for key, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f"--{boundary}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="{file_name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def upload(client: Client, content: bytes, file_name: str = "train.jsonl", **fields: str) -> Any:
    data: dict[str, Any] = {"file": SimpleUploadedFile(file_name, content), **fields}
    return client.post("/datasets/upload/", data)


def create_dataset(
    content: bytes, name: str = "train.jsonl", *, user: Any = None, **fields: Any
) -> Dataset:
    """A stored dataset made through the upload service (validation is queued on commit,
    which a non-transactional test never reaches)."""
    outcome = services.dataset_create_from_upload(
        upload=SimpleUploadedFile(name, content),
        name=fields.pop("title", name.removesuffix(".jsonl")),
        uploaded_by=user,
        **fields,
    )
    assert outcome.created
    return outcome.dataset


def validate_now(dataset: Dataset, model_id: str = GPT4O_MINI) -> Dataset:
    """Runs the validation service in-process (the worker tests run it through Celery)."""
    model = BaseModel.objects.get(pk=model_id)
    Dataset.objects.filter(pk=dataset.pk).update(requested_model=model)
    assert services.dataset_validate(dataset_id=dataset.pk, model_id=model_id)
    dataset.refresh_from_db()
    return dataset


def media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
