"""Hostile files on every dataset page: lone surrogates, a million-element array, thousands of
messages, deep nesting, many keys. Each page answers 200 with a bounded size, and the work a
page does does not grow with what a line holds."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from datasets import examples
from datasets.models import Dataset
from tests.datasets.helpers import chat, create_dataset, jsonl, validate_now
from tests.permissions import LOGIN, assert_matrix

pytestmark = pytest.mark.django_db

PAGE_BYTES = 1_000_000  # what any page of hostile lines may weigh, HTML included


def _tree(width: int, depth: int) -> Any:
    return 0 if depth == 0 else [_tree(width, depth - 1) for _ in range(width)]


def _hostile(scale: int) -> list[bytes]:
    """Lines that each broke or slowed a page; ``scale`` multiplies what they hold."""
    user = {"role": "user", "content": "q"}
    reply = {"role": "assistant", "content": "a"}
    keys = {f"k{i}": i for i in range(5_000 * scale)}
    lines = [
        {"messages": [{"role": "user", "content": list(range(250_000 * scale))}, reply]},
        {"messages": [user, reply] * (1_000 * scale)},
        {"messages": [{"role": "user", "content": "word " * (200_000 * scale)}, reply]},
        {"messages": [{**user, **keys}, reply], "tools": [{"type": "function", "function": {"name": f"t{i}"}} for i in range(2_000 * scale)]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "p"}] * (2_000 * scale)}, reply]},
        {"messages": [{"role": "bogus", "content": "hi", "x": _tree(20 * scale, 3), **{f"x{i}": i for i in range(30)}}, reply]},
        {"messages": [user, {"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}] * (1_000 * scale)}]},
    ]  # fmt: skip
    return [json.dumps(line).encode() for line in lines] + [
        b'{"messages": ' + b"[" * 5000 + b"]" * 5000 + b"}",  # too deep to parse
        b'{"messages": [{"role": "user", "content": ' + b"[" * 500 + b"]" * 500 + b"}]}",
    ]


def _hostile_dataset(scale: int = 1) -> Dataset:
    content = jsonl(_hostile(scale) + [chat(i) for i in range(12)])
    return validate_now(create_dataset(content, f"hostile-{scale}.jsonl"))


def _pages(dataset: Dataset) -> list[str]:
    base = f"/datasets/{dataset.pk}/"
    return [
        base,
        base + "?model=gpt-4o-2024-08-06",
        base + "?family=together",
        base + "status.json",
        base + "examples/",
        base + "examples/?page=2",
        base + "examples/?q=word",
        base + "examples/?q=a&from=3",
        base + "examples/?line=1",
        base + "examples/?line=2",
    ]


def _get(client: Client, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, url
    return response


def test_every_page_of_a_hostile_file_answers_with_a_bounded_size(viewer: Client) -> None:
    dataset = _hostile_dataset()
    assert dataset.status == Dataset.Status.INVALID
    assert dataset.line_count == 21
    for url in _pages(dataset):
        response = _get(viewer, url)
        assert len(response.content) < PAGE_BYTES, (url, len(response.content))
    html = _get(viewer, f"/datasets/{dataset.pk}/examples/").content.decode()
    # Each line links to its raw line; the ones cut short say so.
    for line in range(1, 21):
        assert f'href="/datasets/{dataset.pk}/lines/{line}/"' in html, line
    assert html.count("shortened for display") == 4
    assert "1,802 more messages not shown" in html and "806 more tool calls not shown" in html
    assert "too many JSON values to preview (about 250,007)" in html
    # The first page of a line shows its start.
    assert "ds-role-user" in html and "word word word" in html


def test_the_raw_line_streams_the_exact_bytes_to_readers(viewer: Client) -> None:
    lines = _hostile(1)
    dataset = create_dataset(jsonl(lines + [chat(i) for i in range(12)]), "raw.jsonl")
    for number in (1, 3, 8, 10, 21):
        response = viewer.get(f"/datasets/{dataset.pk}/lines/{number}/")
        assert response.status_code == 200
        assert response.streaming  # never the whole line in memory at once
        body = b"".join(response.streaming_content)
        expected = (lines + [json.dumps(chat(i), ensure_ascii=False).encode() for i in range(12)])[
            number - 1
        ]
        assert body == expected, number
        assert response["Content-Disposition"] == f'attachment; filename="raw-line-{number}.jsonl"'
    for number in (0, 22, 10**12):
        assert viewer.get(f"/datasets/{dataset.pk}/lines/{number}/").status_code == 404
    read = {"anonymous": LOGIN, "norole": 403, "viewer": 200, "member": 200, "staff": 200}
    assert_matrix(f"/datasets/{dataset.pk}/lines/2/", read)
    assert_matrix(f"/datasets/{dataset.pk}/lines/2/", {"member": 405}, method="post")


def _calls(run: Callable[[], object]) -> int:
    """Function calls made while ``run`` runs: work measured without a clock (one C call,
    such as parsing a line, counts once: it is linear in the bytes it reads)."""
    count = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return count


def test_page_work_does_not_grow_with_what_a_line_holds(viewer: Client) -> None:
    small, large = _hostile_dataset(1), _hostile_dataset(4)
    assert large.size > 3 * small.size
    for suffix in ("examples/", "examples/?q=word", "examples/?line=2", ""):
        _get(viewer, f"/datasets/{small.pk}/{suffix}")  # warm caches (templates, sessions)
        small_calls = _calls(lambda: _get(viewer, f"/datasets/{small.pk}/{suffix}"))  # noqa: B023
        large_calls = _calls(lambda: _get(viewer, f"/datasets/{large.pk}/{suffix}"))  # noqa: B023
        assert large_calls < small_calls * 1.15, (suffix, small_calls, large_calls)


def _surrogates() -> bytes:
    # json.dumps escapes a lone surrogate as "\ud800", as the hostile file did.
    bad = [
        {"messages": [{"role": "user", "content": "bad \ud800 here"}, {"role": "assistant", "content": "ok"}]},
        {"messages": [{"role": "user", "content": "q", "\udc00": 1}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "\udfff", "content": "q"}, {"role": "assistant", "content": "a", "tool_calls": [{"id": "\ud801", "type": "function", "function": {"name": "\udbff", "arguments": "{}"}}]}], "tools": [{"type": "function", "function": {"name": "\ud802"}}]},
        {"prompt": "\ud800", "completion": "\udc00"},
        {"input": {"messages": [{"role": "user", "content": "\ud800"}]}, "preferred_output": [{"role": "assistant", "content": "\udc00"}], "non_preferred_output": [{"role": "assistant", "content": [{"type": "text", "text": "\ud800"}, {"type": "image_url", "image_url": {"url": "https://e.com/\ud800.png", "detail": "\ud800"}}]}]},
    ]  # fmt: skip
    good = [chat(i) for i in range(12)]
    return b"".join(json.dumps(item).encode() + b"\n" for item in [good[0], *bad, *good[1:]])


def test_lone_surrogates_are_an_error_and_every_page_renders(viewer: Client) -> None:
    dataset = validate_now(create_dataset(_surrogates()))
    assert dataset.status == Dataset.Status.INVALID  # the report was stored
    group = next(g for g in dataset.report["findings"] if g["code"] == "lone_surrogate")
    assert group["severity"] == "error" and group["count"] == 5
    assert [f["line"] for f in group["examples"]] == [2, 3, 4, 5, 6]
    assert group["examples"][0]["message"].startswith(
        "lone surrogate \\ud800 in messages[0].content"
    )
    for url in [*_pages(dataset), f"/datasets/{dataset.pk}/examples/?q=bad"]:
        _get(viewer, url)
    html = _get(viewer, f"/datasets/{dataset.pk}/examples/").content.decode()
    assert "bad \ufffd here" in html
    assert html.count("invalid Unicode") == 5
    detail = _get(viewer, f"/datasets/{dataset.pk}/").content.decode()
    assert "Invalid Unicode escape" in detail and "lone surrogate" in detail
    raw = viewer.get(f"/datasets/{dataset.pk}/lines/2/")
    assert b"".join(raw.streaming_content) == _surrogates().split(b"\n")[1]


def test_budgets_cut_examples_and_pages() -> None:
    many = {"messages": [{"role": "user", "content": "x" * 3000}] * 500}
    (example,) = examples.examples_page(io.BytesIO(jsonl([many])), {}, 1)
    assert example.truncated
    shown = sum(len(p.text) for m in example.messages for p in m.parts)
    assert shown <= examples.EXAMPLE_CHARS
    assert "more messages not shown" in example.note
    # A page stops parsing once it has read its budget: later lines are listed, not parsed.
    big = jsonl([{"messages": [{"role": "user", "content": "y" * 3_000_000}]}] * 8)
    items = examples.examples_page(io.BytesIO(big), {}, 1)
    assert [e.line for e in items] == list(range(1, 9))
    assert {e.kind for e in items[-2:]} == {"skipped"}


class _CountingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_a_page_never_reads_a_huge_line_through(viewer: Client) -> None:
    huge = json.dumps({"messages": [{"role": "user", "content": "x" * 30_000_000}]}).encode()
    content = jsonl([chat(0), huge] + [chat(i) for i in range(1, 40)])
    dataset = create_dataset(content, "huge.jsonl")
    reader = _CountingReader(content)
    items = examples.examples_page(reader, dataset.line_index, 1)
    assert [e.line for e in items] == list(range(1, 21))
    assert items[1].kind == "oversized"
    assert items[1].note == f"line of {len(huge):,} bytes, too large to preview"
    assert items[2].messages[0].parts[0].text == "Question number 1?"
    assert reader.bytes_read < examples.PREVIEW_LINE_BYTES + 4 * examples.READ_CHUNK
    reader = _CountingReader(content)
    found = examples.examples_search(reader, dataset.line_index, "number 7?")
    assert [e.line for e in found.hits] == [9] and found.next_line is None
    assert reader.bytes_read < examples.PREVIEW_LINE_BYTES + 4 * examples.READ_CHUNK
    response = viewer.get(f"/datasets/{dataset.pk}/lines/2/")
    chunks = list(response.streaming_content)
    assert len(chunks) > 100 and b"".join(chunks) == huge
