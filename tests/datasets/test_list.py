"""The datasets list: filters, pagination, and a fixed number of queries."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from datasets.models import Dataset
from tests.datasets.helpers import chat_file, create_dataset
from tests.permissions import make_user

pytestmark = pytest.mark.django_db


def names(page: Any) -> list[str]:
    return re.findall(r'<a href="/datasets/\d+/">([^<]*)</a>', page.content.decode())


def make(name: str, i: int, **fields: Any) -> Dataset:
    dataset = create_dataset(chat_file(11, start=i * 100), f"{name}.jsonl", title=name)
    if fields:
        Dataset.objects.filter(pk=dataset.pk).update(**fields)
    return dataset


@pytest.fixture
def catalog() -> None:
    owner = make_user("member", "owner")
    make("alpha", 1, status="valid", format="chat", tags=["support", "v1"], n_examples=11)
    make("beta", 2, status="invalid", format="dpo", tags=["v1"], description="preference pairs")
    make("gamma", 3, status="valid", format="chat_tools", tags=["support"])
    make("delta", 4, uploaded_by=owner)


def test_lists_newest_first_with_columns(viewer: Client, catalog: None) -> None:
    page = viewer.get("/datasets/")
    assert page.status_code == 200
    assert names(page) == ["delta", "gamma", "beta", "alpha"]
    text = page.content.decode()
    assert "Chat with tools" in text and "owner" in text and "badge-ok" in text
    assert '<td class="num">11</td>' in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=valid", ["gamma", "alpha"]),
        ("status=invalid", ["beta"]),
        ("format=dpo", ["beta"]),
        ("tag=support", ["gamma", "alpha"]),
        ("tag=SUPPORT", ["gamma", "alpha"]),
        ("tag=v1&status=valid", ["alpha"]),
        ("q=PAIRS", ["beta"]),
        ("q=amm", ["gamma"]),
        ("q=nothing", []),
        ("status=bogus", ["delta", "gamma", "beta", "alpha"]),
    ],
)
def test_filters(viewer: Client, catalog: None, query: str, expected: list[str]) -> None:
    page = viewer.get(f"/datasets/?{query}")
    assert page.status_code == 200
    assert names(page) == expected


def test_tag_choices_come_from_the_data(viewer: Client, catalog: None) -> None:
    text = viewer.get("/datasets/").content.decode()
    assert re.findall(
        r'<option value="([^"]+)"', text.split('id="id_tag"')[1].split("</select>")[0]
    ) == [
        "support",
        "v1",
    ]


def test_pagination(viewer: Client) -> None:
    for i in range(30):
        make(f"d{i:02d}", i)
    first = viewer.get("/datasets/")
    assert len(names(first)) == 25 and names(first)[0] == "d29"
    assert b"Page 1 of 2" in first.content
    second = viewer.get("/datasets/?page=2")
    assert names(second) == ["d04", "d03", "d02", "d01", "d00"]
    assert names(viewer.get("/datasets/?page=99")) == names(second)
    assert names(viewer.get("/datasets/?page=x")) == names(first)
    filtered = viewer.get("/datasets/?q=d0&page=1")
    assert len(names(filtered)) == 10 and b"Page 1 of" not in filtered.content
    # Page links keep the filters.
    assert 'href="?q=d&amp;page=2"' in viewer.get("/datasets/?q=d").content.decode()


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get("/datasets/").status_code == 200
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_rows(viewer: Client) -> None:
    owner = make_user("member", "owner")
    for i in range(3):
        make(f"few{i}", i, uploaded_by=owner, tags=["a"])
    few = _queries(viewer)
    for i in range(3, 25):
        make(f"many{i}", i, uploaded_by=owner, tags=["a", f"t{i}"])
    many = _queries(viewer)
    assert few == many
    assert many <= 8
    with CaptureQueriesContext(connection) as ctx:
        viewer.get("/datasets/")
    listing = next(
        q["sql"]
        for q in ctx.captured_queries
        if 'FROM "datasets_dataset" LEFT OUTER JOIN' in q["sql"]
    )
    assert '"report"' not in listing and '"line_index"' not in listing


def test_empty_states(viewer: Client) -> None:
    assert b"No datasets yet." in viewer.get("/datasets/").content
    assert b"No datasets match these filters." in viewer.get("/datasets/?q=zzz").content


def test_upload_button_only_for_members(viewer: Client, member: Client) -> None:
    assert b'href="/datasets/upload/"' in member.get("/datasets/").content
    assert b'href="/datasets/upload/"' not in viewer.get("/datasets/").content
