"""Requirement 1: one streaming pass, lines across chunk boundaries, bounded memory, progress."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import pytest

from datasets.validation import validate_stream
from datasets.validation.engine import Validation
from datasets.validation.lines import (
    ByteProgress,
    OversizedLine,
    iter_chunks,
    iter_lines,
)

from .helpers import chat, codes, jsonl, padded, simple, validate


def one_byte_chunks(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def test_lines_are_assembled_across_chunk_boundaries() -> None:
    data = b"ab\ncd\r\n\nlast"
    for size in (1, 2, 3, 5, 100):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(iter_lines(chunks)) == [b"ab", b"cd\r", b"", b"last"]


def test_final_newline_does_not_make_an_extra_line() -> None:
    assert list(iter_lines([b"a\nb\n"])) == [b"a", b"b"]
    assert list(iter_lines([b""])) == []
    assert list(iter_lines([b"\n"])) == [b""]


def test_only_newline_bytes_split_lines_not_u2028() -> None:
    # U+2028/U+2029 and \x85 are line breaks for str.splitlines() but legal inside JSON strings.
    line = '{"messages": [{"role": "user", "content": "a\u2028b\u2029c\x85d"}]}'.encode()
    assert list(iter_lines([line + b"\n" + line])) == [line, line]


def test_iter_chunks_accepts_files_iterables_and_bytes() -> None:
    data = b"x" * 10
    assert b"".join(iter_chunks(io.BytesIO(data), 3)) == data
    assert next(iter_chunks(io.BytesIO(data), 3)) == b"xxx"
    assert list(iter_chunks([b"ab", bytearray(b"cd"), b"", memoryview(b"e")])) == [
        b"ab",
        b"cd",
        b"e",
    ]
    assert list(iter_chunks(data, 4)) == [b"xxxx", b"xxxx", b"xx"]
    # One giant chunk from an iterable is re-cut so it never becomes one giant list of lines.
    assert [len(c) for c in iter_chunks([b"y" * 10], 4)] == [4, 4, 2]


def test_text_mode_file_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="binary mode"):
        list(iter_chunks(io.StringIO("{}\n")))  # type: ignore[arg-type]


def test_validation_is_identical_whatever_the_chunking() -> None:
    data = jsonl(padded([b"not json", b"", b'{"messages": []}']))
    whole = validate_stream(data).to_dict()
    assert validate_stream(one_byte_chunks(data)).to_dict() == whole
    assert validate_stream(io.BytesIO(data)).to_dict() == whole


def test_crlf_is_tolerated_silently() -> None:
    data = jsonl(padded([])).replace(b"\n", b"\r\n")
    report = validate(data)
    assert report.n_lines == 60
    assert report.n_examples == 60
    assert codes(report) == {}


def test_oversized_line_is_reported_and_skipped_with_small_cap() -> None:
    big = b'{"messages": "' + b"x" * 5000 + b'"}'
    data = jsonl(padded([simple(1), big, simple(2)], total=62))
    report = Validation(max_line_bytes=1000).run(data)
    assert report.count("line_too_long") == 1
    assert report.lines("line_too_long") == [2]
    finding = report.findings["line_too_long"].examples[0]
    assert finding.message == "line is 5,016 bytes; lines over 1,000 bytes are not read"
    assert finding.excerpt.startswith('{"messages": "xxx')
    assert len(finding.excerpt) == 200
    assert report.n_lines == 62
    assert report.n_invalid_lines == 1
    assert report.n_examples == 61


def test_oversized_line_cut_in_chunks_and_last_line() -> None:
    chunks = [b"ok\n", b"a" * 600, b"b" * 600, b"\nok2\n", b"c" * 2000]
    lines = list(iter_lines(chunks, max_line_bytes=1000))
    assert lines[0] == b"ok"
    assert lines[1] == OversizedLine(b"a" * 600 + b"b" * 424, 1200)
    assert lines[2] == b"ok2"
    assert isinstance(lines[3], OversizedLine) and lines[3].size == 2000
    assert len(lines) == 4


def test_an_oversized_line_keeps_its_first_kilobyte_however_it_is_chunked() -> None:
    # The excerpt of a line_too_long finding must not depend on how the file was read (the
    # parallel validator cuts the same file into other pieces).
    line = bytes(range(256)).replace(b"\n", b"-") * 12
    for size in (1, 7, 100, 5000):
        chunks = [line[i : i + size] for i in range(0, len(line), size)] + [b"\nok"]
        assert list(iter_lines(chunks, max_line_bytes=50)) == [
            OversizedLine(line[:1024], len(line)),
            b"ok",
        ]


def test_default_cap_reports_a_real_33_mib_line() -> None:
    huge = b'{"messages": [{"role": "user", "content": "' + b"z" * (33 << 20) + b'"}]}'
    report = validate_stream(iter([b'{"a": 1}\n', huge, b"\n", b'{"b": 2}\n']))
    assert report.lines("line_too_long") == [2]
    assert report.n_lines == 3
    assert report.n_examples == 2


def test_pathological_single_line_uses_bounded_memory() -> None:
    """100 MB without a newline, streamed: the reader keeps at most cap + one chunk."""
    chunk = b"q" * (1 << 20)

    def stream() -> Iterator[bytes]:
        for _ in range(100):
            yield chunk

    tracemalloc.start()
    try:
        lines = list(iter_lines(stream(), max_line_bytes=4 << 20))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [OversizedLine(b"q" * 1024, 100 << 20)]
    assert peak < 8 << 20


def test_progress_is_called_every_mib_and_once_at_the_end() -> None:
    calls: list[int] = []
    data = jsonl(
        chat(("user", f"{i} " + "lorem ipsum " * 170), ("assistant", "ok")) for i in range(3500)
    )
    validate_stream(io.BytesIO(data), progress=calls.append)
    assert calls == [(i + 1) << 20 for i in range(len(data) >> 20)] + [len(data)]


def test_progress_with_known_total_reports_about_one_percent_steps() -> None:
    calls: list[int] = []
    counter = ByteProgress(calls.append, total_bytes=500 << 20)
    for _ in counter.wrap(iter([b"x" * (1 << 20)] * 20)):
        pass
    counter.finish()
    # 1% of 500 MiB is 5 MiB, larger than the 1 MiB floor.
    assert calls == [5 * 1048576, 10 * 1048576, 15 * 1048576, 20 * 1048576]


def test_progress_on_empty_input_is_called_once() -> None:
    calls: list[int] = []
    report = validate_stream(b"", progress=calls.append)
    assert calls == [0]
    assert report.n_lines == 0
