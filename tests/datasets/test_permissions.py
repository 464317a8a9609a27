"""Every datasets view under the permission matrix."""

from __future__ import annotations

import pytest

from datasets.models import Dataset
from tests.datasets.helpers import chat_file, create_dataset
from tests.permissions import LOGIN, assert_matrix

pytestmark = pytest.mark.django_db

READ = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
ACT_PAGE = {"anonymous": LOGIN, "norole": 403, "viewer": 403, "member": 200, "staff": 200}
STAFF_ONLY = {
    "anonymous": LOGIN, "norole": LOGIN, "viewer": LOGIN, "member": LOGIN, "staff": 200,
    # The staff flag lets them into the admin, where their role gives them no model permission.
    "staff_viewer": 403, "staff_norole": 403,
}  # fmt: skip


@pytest.fixture
def dataset() -> Dataset:
    return create_dataset(chat_file(40))


def test_read_views(dataset: Dataset) -> None:
    for url in (
        "/datasets/",
        "/datasets/?status=valid&page=2",
        f"/datasets/{dataset.pk}/",
        f"/datasets/{dataset.pk}/?model=gpt-4o-2024-08-06",
        f"/datasets/{dataset.pk}/status.json",
        f"/datasets/{dataset.pk}/examples/",
        f"/datasets/{dataset.pk}/examples/?q=answer",
        f"/datasets/{dataset.pk}/download/",
        f"/datasets/{dataset.pk}/lines/3/",
        f"/datasets/{dataset.pk}/examples/?line=3",
    ):
        assert_matrix(url, READ)


def test_member_pages(dataset: Dataset) -> None:
    assert_matrix("/datasets/upload/", ACT_PAGE)
    assert_matrix(f"/datasets/{dataset.pk}/derive/", ACT_PAGE)


def test_member_posts(dataset: Dataset) -> None:
    denied = {"anonymous": LOGIN, "norole": 403, "viewer": 403}
    # An upload without a file reaches the form (400) only with the member permission.
    assert_matrix("/datasets/upload/", {**denied, "member": 400, "staff": 400}, method="post")
    assert Dataset.objects.count() == 1
    assert_matrix(
        f"/datasets/{dataset.pk}/revalidate/",
        {**denied, "member": 302, "staff": 302},
        method="post",
        data={"model": "gpt-4o-2024-08-06"},
    )
    assert_matrix(
        f"/datasets/{dataset.pk}/split/",
        {**denied, "member": 302, "staff": 302},
        method="post",
        data={"train": "0.5", "validation": "0.5", "seed": "1"},
    )
    assert_matrix(
        f"/datasets/{dataset.pk}/subset/",
        {**denied, "member": 302, "staff": 302},
        method="post",
        data={"mode": "first", "n": "5", "seed": "1"},
    )
    # Two parts from the first split, one subset; the second member-level post linked them.
    assert Dataset.objects.count() == 4


def test_writes_reject_get_and_reads_reject_post(dataset: Dataset) -> None:
    for url in ("revalidate", "split", "subset"):
        assert_matrix(f"/datasets/{dataset.pk}/{url}/", {"member": 405})
    for url in ("", "examples/", "download/", "status.json", "lines/1/"):
        assert_matrix(f"/datasets/{dataset.pk}/{url}", {"member": 405}, method="post")
    assert_matrix("/datasets/upload/", {"member": 405}, method="put")


def test_admin_pages(dataset: Dataset) -> None:
    for url in (
        "/admin/datasets/dataset/",
        "/admin/datasets/dataset/add/",
        f"/admin/datasets/dataset/{dataset.pk}/change/",
        "/admin/datasets/basemodel/",
        "/admin/datasets/basemodel/gpt-4o-2024-08-06/change/",
        "/admin/datasets/basemodel/add/",
    ):
        assert_matrix(url, STAFF_ONLY)
