"""The line index: every line can be reached by seeking, however the bytes were chunked."""

from __future__ import annotations

import io
import random

import pytest

from datasets.lineindex import LineIndexer, seek_line


def _content(seed: int, n: int) -> tuple[bytes, list[bytes]]:
    rng = random.Random(seed)
    lines = [(b"x" * rng.choice([0, 1, 5, 50, 300])) + str(i).encode() for i in range(n)]
    return b"".join(line + b"\n" for line in lines), lines


def _index(content: bytes, seed: int, **kwargs: int) -> LineIndexer:
    rng = random.Random(seed)
    indexer = LineIndexer(**kwargs)
    pos = 0
    while pos < len(content):
        size = rng.choice([1, 7, 64, 1000, 5000])
        indexer.feed(content[pos : pos + size])
        pos += size
    return indexer


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_line_is_found_by_seeking(seed: int) -> None:
    content, lines = _content(seed, 400)
    indexer = _index(content, seed, step=256, max_checkpoints=10_000)
    index = indexer.to_json()
    assert len(index["lines"]) > 20
    assert indexer.line_count == 400
    for number, offset in zip(index["lines"], index["offsets"], strict=True):
        assert content[offset - 1 : offset] == b"\n"
        assert content[offset:].split(b"\n", 1)[0] == lines[number - 1]
    fh = io.BytesIO(content)
    for number in range(1, 401):
        assert seek_line(fh, number, index)
        assert fh.readline().rstrip(b"\n") == lines[number - 1]
    assert not seek_line(fh, 401, index)


def test_checkpoints_are_thinned_to_the_cap() -> None:
    content, lines = _content(9, 3000)
    indexer = _index(content, 9, step=64, max_checkpoints=16)
    index = indexer.to_json()
    assert len(index["lines"]) <= 16
    assert indexer.step > 64
    fh = io.BytesIO(content)
    for number in (1, 2, 1500, 2999, 3000):
        assert seek_line(fh, number, index)
        assert fh.readline().rstrip(b"\n") == lines[number - 1]


def test_line_count_and_edges() -> None:
    for content, expected in ((b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2)):
        indexer = LineIndexer()
        indexer.feed(content)
        assert indexer.line_count == expected, content
    assert not seek_line(io.BytesIO(b""), 1, {})
    fh = io.BytesIO(b"a\nb")
    assert seek_line(fh, 2, None) and fh.read() == b"b"
    assert not seek_line(fh, 3, None)
