"""The Django admin: uploads through the same handler and service, actions call services."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from datasets.models import BaseModel, Dataset
from tests.datasets.helpers import (
    GPT4O_MINI,
    chat_file,
    create_dataset,
    media_files,
    multipart,
    validate_now,
)

pytestmark = pytest.mark.django_db

ADD = "/admin/datasets/dataset/add/"


def test_admin_upload_goes_through_the_service(staff: Client) -> None:
    page = staff.get(ADD)
    assert page.status_code == 200
    assert b'enctype="multipart/form-data"' in page.content and b'name="file"' in page.content
    content = chat_file(25)
    response = staff.post(
        ADD,
        {"file": SimpleUploadedFile("admin.jsonl", content), "tags": "A, b", "model": GPT4O_MINI},
    )
    dataset = Dataset.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/datasets/dataset/{dataset.pk}/change/"
    assert (dataset.name, dataset.tags, dataset.size) == ("admin", ["a", "b"], len(content))
    assert dataset.uploaded_by.username == "staff-user"
    assert media_files() == [Path(dataset.file.path)]
    again = staff.post(ADD, {"file": SimpleUploadedFile("again.jsonl", content)})
    assert again["Location"] == response["Location"]
    assert Dataset.objects.count() == 1


def test_admin_upload_refusals_leave_nothing(staff: Client, settings) -> None:  # type: ignore[no-untyped-def]
    body, content_type = multipart({}, file_name="../evil.jsonl", content=chat_file(12))
    response = staff.post(ADD, body, content_type=content_type)
    assert response.status_code == 400 and b"looks like a path" in response.content
    response = staff.post(ADD, {"file": SimpleUploadedFile("x.jsonl", b"")})
    assert response.status_code == 400 and b"The file is empty." in response.content
    settings.DATASET_MAX_UPLOAD_BYTES = 100
    response = staff.post(ADD, {"file": SimpleUploadedFile("x.jsonl", chat_file(12))})
    assert response.status_code == 400 and b"limit" in response.content
    assert Dataset.objects.count() == 0
    assert media_files() == []


def test_admin_change_page_and_tag_edit(staff: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(20)))
    page = staff.get(f"/admin/datasets/dataset/{dataset.pk}/change/")
    assert page.status_code == 200
    text = page.content.decode()
    assert dataset.sha256 in text and "Open the dataset page" in text
    assert f"/datasets/{dataset.pk}/download/" in text
    assert 'name="sha256"' not in text  # read-only
    response = staff.post(
        f"/admin/datasets/dataset/{dataset.pk}/change/",
        {"name": "renamed", "description": "d", "tags": "Gold,  gold , silver"},
    )
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert (dataset.name, dataset.tags) == ("renamed", ["gold", "silver"])
    assert dataset.report is not None  # untouched by the form
    changelist = staff.get("/admin/datasets/dataset/?status__exact=valid&q=renamed")
    assert changelist.status_code == 200 and b"renamed" in changelist.content


def test_admin_actions_call_services(staff: Client, django_capture_on_commit_callbacks) -> None:  # type: ignore[no-untyped-def]
    one = validate_now(create_dataset(chat_file(20)))
    two = validate_now(create_dataset(chat_file(20, start=50)))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = staff.post(
            "/admin/datasets/dataset/",
            {"action": "validate_again", "_selected_action": [one.pk, two.pk]},
        )
    assert response.status_code == 302
    assert len(queued) == 2
    assert set(Dataset.objects.values_list("status", flat=True)) == {"uploaded"}

    path = Path(one.file.path)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            "/admin/datasets/dataset/",
            {"action": "delete_with_files", "_selected_action": [one.pk]},
        )
    assert response.status_code == 302
    assert not Dataset.objects.filter(pk=one.pk).exists() and not path.exists()

    path = Path(two.file.path)
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/datasets/dataset/{two.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert Dataset.objects.count() == 0 and not path.exists()
    assert media_files() == []


def test_default_bulk_delete_is_replaced(staff: Client) -> None:
    create_dataset(chat_file(20))
    page = staff.get("/admin/datasets/dataset/").content.decode()
    assert 'value="delete_with_files"' in page and 'value="delete_selected"' not in page


def test_catalog_edit_and_report_refresh(staff: Client) -> None:
    dataset = validate_now(create_dataset(chat_file(40)))
    old_cost = Decimal(dataset.report["estimates"]["training_cost"])
    page = staff.get(f"/admin/datasets/basemodel/{GPT4O_MINI}/change/")
    assert page.status_code == 200 and b'name="id"' not in page.content
    model = BaseModel.objects.get(pk=GPT4O_MINI)
    model.training_price_per_1m = Decimal("6")
    model.save()
    response = staff.post(
        "/admin/datasets/basemodel/",
        {"action": "refresh_reports", "_selected_action": [GPT4O_MINI]},
    )
    assert response.status_code == 302
    dataset.refresh_from_db()
    assert Decimal(dataset.report["estimates"]["training_cost"]) == old_cost * 2
    listing = staff.get("/admin/datasets/basemodel/?encoding__exact=cl100k_base")
    assert b"babbage-002" in listing.content and b"gpt-4o-mini" not in listing.content
