"""The example browser's search finds message text, not JSON keys or syntax, and marks what it
found, escaped (issue 14, item 13)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from tests.datasets.helpers import chat, create_dataset, jsonl

pytestmark = pytest.mark.django_db


def _lines(page: Any) -> list[int]:
    found = re.findall(r'<article class="ds-example[^"]*" id="line-(\d+)"', page.content.decode())
    return [int(n) for n in found]


def _search(viewer: Client, dataset_pk: int, q: str) -> Any:
    return viewer.get(f"/datasets/{dataset_pk}/examples/", {"q": q})


def test_keys_and_json_syntax_are_not_found(viewer: Client) -> None:
    items: list[Any] = [chat(i) for i in range(6)]
    items[2] = chat(2, answer="Set the role of the user first.")
    dataset = create_dataset(jsonl(items))
    # Every line has "role", "content" and "assistant" as keys and values of its JSON.
    assert _lines(_search(viewer, dataset.pk, "role")) == [3]
    for syntax in ("content", '"assistant"', '{"', "messages", '": "'):
        assert _lines(_search(viewer, dataset.pk, syntax)) == [], syntax
    assert b"0 matches" in _search(viewer, dataset.pk, "content").content


def test_text_with_quotes_and_newlines_is_found_as_written(viewer: Client) -> None:
    items: list[Any] = [chat(i) for i in range(4)]
    items[1] = chat(1, answer='She said "hi"\nand left.')
    dataset = create_dataset(jsonl(items))
    assert _lines(_search(viewer, dataset.pk, 'said "hi"')) == [2]
    assert _lines(_search(viewer, dataset.pk, "AND LEFT")) == [2]


def test_every_format_searches_its_text_and_unparsed_lines_their_raw_text(
    viewer: Client,
) -> None:
    dataset = create_dataset(
        jsonl([
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "parted zebra"}]}]},
            {"input": {"messages": [{"role": "user", "content": "Hi"}]},
             "preferred_output": [{"role": "assistant", "content": "a kind zebra"}],
             "non_preferred_output": [{"role": "assistant", "content": "no"}]},
            {"prompt": "zebra?", "completion": " yes"},
            b'{"broken zebra',
            {"unknown": "zebra"},
            chat(6),
        ])
    )  # fmt: skip
    assert _lines(_search(viewer, dataset.pk, "zebra")) == [1, 2, 3, 4, 5]
    assert _lines(_search(viewer, dataset.pk, "prompt")) == []  # a key of line 3 only


def test_what_was_found_is_marked_and_escaped(viewer: Client) -> None:
    dataset = create_dataset(
        jsonl([chat(0, answer="Use <b>Needle</b> & thread; a needle again."), chat(1)])
    )
    page = _search(viewer, dataset.pk, "needle").content.decode()
    assert (
        "Use &lt;b&gt;<mark>Needle</mark>&lt;/b&gt; &amp; thread; a <mark>needle</mark> again."
        in page
    )
    assert "<b>Needle</b>" not in page
    # A query that is itself markup is text to find, never markup on the page.
    hostile = create_dataset(jsonl([chat(0, answer="x <script>alert(1)</script> y")]))
    page = _search(viewer, hostile.pk, "<script>").content.decode()
    assert "<mark>&lt;script&gt;</mark>alert(1)&lt;/script&gt;" in page
    assert "<script>alert(1)" not in page
    # Browsing without a search marks nothing.
    assert "<mark>" not in viewer.get(f"/datasets/{dataset.pk}/examples/").content.decode()
