"""The example browser: lazy pages, search, and how examples are drawn."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

import pytest
from django.test import Client

from datasets import examples
from tests.datasets.helpers import chat, chat_file, create_dataset, jsonl

pytestmark = pytest.mark.django_db

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 92).decode()  # 100 bytes


def _lines(page: Any) -> list[int]:
    return [
        int(n)
        for n in re.findall(
            r'<article class="ds-example[^"]*" id="line-(\d+)"', page.content.decode()
        )
    ]


def _showcase() -> bytes:
    rich = [
        {
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://images.example.com/cat.jpg"}},
                ]},
                {"role": "assistant", "content": "A draft.", "weight": 0},
                {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "lookup_animal", "arguments": "{\"q\": \"cat\"}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "cat"},
                {"role": "assistant", "content": "A cat."},
            ],
            "tools": [{"type": "function", "function": {"name": "lookup_animal"}}],
        },
        {
            "input": {"messages": [{"role": "user", "content": "Hi"}]},
            "preferred_output": [{"role": "assistant", "content": "Hello!"}],
            "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
        },
        {"prompt": "2+2=", "completion": " 4"},
        b"{not json",
        b"",
        {"unknown": True},
    ]  # fmt: skip
    return jsonl(rich + [chat(i) for i in range(6, 45)])


def test_pages_follow_line_numbers(viewer: Client) -> None:
    dataset = create_dataset(_showcase())
    assert dataset.line_count == 45
    url = f"/datasets/{dataset.pk}/examples/"
    assert _lines(viewer.get(url)) == list(range(1, 21))
    assert _lines(viewer.get(url + "?page=2")) == list(range(21, 41))
    last = viewer.get(url + "?page=3")
    assert _lines(last) == list(range(41, 46))
    assert b"Page 3 of 3" in last.content and b'rel="next"' not in last.content
    assert _lines(viewer.get(url + "?page=999")) == list(range(41, 46))
    assert _lines(viewer.get(url + "?page=abc")) == list(range(1, 21))
    assert _lines(viewer.get(url + "?page=-4")) == list(range(1, 21))


def test_examples_are_drawn_as_chat_bubbles(viewer: Client) -> None:
    dataset = create_dataset(_showcase())
    text = viewer.get(f"/datasets/{dataset.pk}/examples/").content.decode()
    assert "ds-role-system" in text and "ds-role-user" in text and "ds-role-assistant" in text
    assert "weight 0 · not trained" in text
    assert "tool call" in text and "lookup_animal" in text and "call_1" in text
    assert "ds-role-tool" in text and "↩ call_1" in text
    assert 'tools: <span class="mono">lookup_animal</span>' in text
    # Images: placeholders only, never fetched or embedded.
    assert "embedded image/png, 100 bytes" in text
    assert "https://images.example.com/cat.jpg" in text
    assert "<img" not in text and "data:image/png" not in text
    assert "Preferred" in text and "Not preferred" in text and "Go away." in text
    assert "prompt" in text and "2+2=" in text
    assert "not valid JSON" in text and "{not json" in text
    assert "blank line" in text and "unrecognised example" in text


def test_search_streams_with_a_cap_and_continues(viewer: Client) -> None:
    items: list[Any] = [chat(i) for i in range(60)]
    for i in (4, 29, 43, 58):
        items[i] = chat(i, answer="The NEEDLE is here.")
    dataset = create_dataset(jsonl(items))
    with dataset.file.open("rb") as fh:
        result = examples.examples_search(fh, dataset.line_index, "needle", max_hits=2)
    assert [e.line for e in result.hits] == [5, 30]
    assert result.next_line == 31
    page = viewer.get(f"/datasets/{dataset.pk}/examples/?q=Needle")
    assert _lines(page) == [5, 30, 44, 59]
    assert b"4 matches" in page.content
    page = viewer.get(f"/datasets/{dataset.pk}/examples/?q=needle&from=31")
    assert _lines(page) == [44, 59]
    assert _lines(viewer.get(f"/datasets/{dataset.pk}/examples/?q=nothing-like-this")) == []


def test_search_finds_non_ascii_written_escaped(viewer: Client) -> None:
    items = [chat(i) for i in range(12)]
    items[3] = chat(3, answer="Caf\u00e9 au lait")
    import json

    content = b"".join(json.dumps(item).encode() + b"\n" for item in items)  # ensure_ascii
    dataset = create_dataset(content)
    assert _lines(viewer.get(f"/datasets/{dataset.pk}/examples/?q=caf%C3%A9")) == [4]


def test_search_stops_at_the_byte_budget() -> None:
    content = chat_file(1000)
    with io.BytesIO(content) as fh:
        result = examples.examples_search(fh, {}, "answer", max_hits=10_000, max_bytes=10_000)
    assert 0 < result.scanned_to < 1000
    assert result.next_line == result.scanned_to + 1
    assert len(result.hits) == result.scanned_to


class CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_a_deep_page_reads_a_small_part_of_the_file(viewer: Client) -> None:
    content = chat_file(60_000)
    assert len(content) > 4_000_000
    dataset = create_dataset(content)
    assert len(dataset.line_index["lines"]) >= 3
    reader = CountingReader(content)
    items = examples.examples_page(reader, dataset.line_index, 45_001)
    assert [e.line for e in items] == list(range(45_001, 45_021))
    assert items[0].messages[0].parts[0].text == "Question number 45000?"
    assert reader.bytes_read < 3_000_000
    page = viewer.get(f"/datasets/{dataset.pk}/examples/?page=2251")
    assert _lines(page) == list(range(45_001, 45_021))
    assert b"Question number 45000?" in page.content


def test_long_text_is_clipped() -> None:
    item = chat(1, answer="y" * 10_000)
    (example,) = examples.examples_page(io.BytesIO(jsonl([item])), {}, 1)
    text = example.messages[1].parts[0].text
    assert text.startswith("y" * examples.TEXT_CHARS)
    assert text.endswith("(6,000 more characters)")


def test_missing_file_is_reported_not_500(viewer: Client) -> None:
    dataset = create_dataset(chat_file(20))
    dataset.file.storage.delete(dataset.file.name)
    page = viewer.get(f"/datasets/{dataset.pk}/examples/")
    assert page.status_code == 200
    assert b"missing from storage" in page.content
