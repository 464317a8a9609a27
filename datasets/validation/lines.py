"""Turning a byte stream into lines with bounded memory, and reporting progress."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

CHUNK_SIZE = 1 << 20
PROGRESS_EVERY = 1 << 20
# Vision examples embed base64 images (10 MB each, at most 10 per example), so lines can be
# legitimately large; past this the line is reported instead of buffered. 32 MiB bounds peak
# memory (line + decoded text + parsed JSON) to roughly 150 MB in the worst case.
MAX_LINE_BYTES = 32 << 20
_PREFIX_BYTES = 1024

UTF8_BOM = b"\xef\xbb\xbf"


@runtime_checkable
class _Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


Source = (
    BinaryIO | _Readable | Iterable[bytes | bytearray | memoryview] | bytes | bytearray | memoryview
)


@dataclass(frozen=True, slots=True)
class OversizedLine:
    """A line longer than the cap: only its start (for the excerpt) and size are kept."""

    prefix: bytes
    size: int


def iter_chunks(source: Source, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Bytes chunks of at most ``chunk_size`` from a binary file object, an iterable of
    chunks, or a bytes-like object."""
    if isinstance(source, bytes | bytearray | memoryview):
        yield from _split(memoryview(source), chunk_size)
        return
    if isinstance(source, _Readable):
        while True:
            chunk = source.read(chunk_size)
            if not chunk:
                return
            yield _checked(chunk)
    for piece in source:
        chunk = _checked(piece)
        if len(chunk) > chunk_size:
            # One enormous chunk would otherwise become one enormous list of lines.
            yield from _split(memoryview(chunk), chunk_size)
        elif chunk:
            yield chunk


def _checked(chunk: object) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, bytearray | memoryview):
        return bytes(chunk)
    raise TypeError(
        f"expected bytes chunks, got {type(chunk).__name__}; open the file in binary mode"
    )


def _split(view: memoryview, size: int) -> Iterator[bytes]:
    for start in range(0, len(view), size):
        yield bytes(view[start : start + size])


class ByteProgress:
    """Counts bytes flowing through and calls ``progress`` at most every ``every`` bytes."""

    def __init__(
        self,
        progress: Callable[[int], None] | None,
        total_bytes: int | None = None,
        every: int = PROGRESS_EVERY,
    ) -> None:
        self.progress = progress
        # With a known size, ~100 updates are plenty however big the file is.
        self.every = max(every, (total_bytes or 0) // 100)
        self.read = 0
        self._reported: int | None = None

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.update(self.read + len(chunk))
            yield chunk

    def update(self, done: int) -> None:
        """``done`` bytes are through (the parallel validator counts bytes merged, not read)."""
        self.read = done
        if self.progress is not None and (done - (self._reported or 0) >= self.every):
            self._reported = done
            self.progress(done)

    def finish(self) -> None:
        if self.progress is not None and self._reported != self.read:
            self._reported = self.read
            self.progress(self.read)


def _prefix(parts: list[bytes]) -> bytes:
    out = bytearray()
    for part in parts:
        out += part[: _PREFIX_BYTES - len(out)]
        if len(out) >= _PREFIX_BYTES:
            break
    return bytes(out)


def _more(prefix: bytes, data: bytes) -> bytes:
    """``prefix`` topped up from ``data``: an oversized line's prefix is its first
    _PREFIX_BYTES bytes however the stream was chunked."""
    if len(prefix) >= _PREFIX_BYTES:
        return prefix
    return prefix + data[: _PREFIX_BYTES - len(prefix)]


def iter_lines(
    chunks: Iterable[bytes], max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[bytes | OversizedLine]:
    """Lines without their b"\\n" (a final newline does not start an empty last line).

    Only b"\\n" ends a line: splitting decoded text with str.splitlines() would also break
    on U+2028 and friends, which are legal raw characters inside JSON strings.
    """
    carry: list[bytes] = []
    carry_size = 0
    skipping: bytes | None = None  # prefix of the oversized line being skipped
    for chunk in chunks:
        pieces = chunk.split(b"\n")
        tail = pieces.pop()
        for piece in pieces:
            if skipping is not None:
                yield OversizedLine(_more(skipping, piece), carry_size + len(piece))
                skipping, carry_size = None, 0
            elif carry:
                size = carry_size + len(piece)
                carry.append(piece)
                if size > max_line_bytes:
                    yield OversizedLine(_prefix(carry), size)
                else:
                    yield b"".join(carry)
                carry, carry_size = [], 0
            elif len(piece) > max_line_bytes:
                yield OversizedLine(piece[:_PREFIX_BYTES], len(piece))
            else:
                yield piece
        if not tail:
            continue
        carry_size += len(tail)
        if skipping is not None:
            skipping = _more(skipping, tail)
            continue
        carry.append(tail)
        if carry_size > max_line_bytes:
            skipping = _prefix(carry)
            carry = []
    if skipping is not None:
        yield OversizedLine(skipping, carry_size)
    elif carry:
        yield b"".join(carry)


def iter_blocks(
    chunks: Iterable[bytes],
    block_bytes: int | Callable[[int], int],
    max_line_bytes: int = MAX_LINE_BYTES,
) -> Iterator[bytes | OversizedLine]:
    """The stream cut at line boundaries into blocks of about ``block_bytes`` (whole lines:
    every block but the file's last ends with b"\\n"), for validating blocks in parallel.
    ``block_bytes`` may be a function of the bytes cut into blocks so far.

    A line that grows past ``max_line_bytes`` before its end is read comes out on its own as
    an ``OversizedLine`` (what ``iter_lines`` makes of it), so a block never holds more than
    about ``block_bytes + max_line_bytes``.
    """
    buf = bytearray()
    cut = 0  # just past the last b"\\n" in buf
    skipping: bytes | None = None  # prefix of the oversized line being skipped
    skipped = 0
    size_for = block_bytes if callable(block_bytes) else None
    size = block_bytes(0) if callable(block_bytes) else block_bytes
    done = 0
    for chunk in chunks:
        if skipping is not None:
            end = chunk.find(b"\n")
            if end < 0:
                skipping = _more(skipping, chunk)
                skipped += len(chunk)
                continue
            yield OversizedLine(_more(skipping, chunk[:end]), skipped + end)
            skipping = None
            chunk = chunk[end + 1 :]
        last = chunk.rfind(b"\n")
        if last >= 0:
            cut = len(buf) + last + 1
        buf += chunk
        full = len(buf) >= size
        # A block ends at the first line end at or past ``size`` (so a chunk may make several
        # blocks when they are small), or at the last whole line when that comes first.
        while cut and len(buf) >= size:
            end = buf.find(b"\n", size - 1, cut) + 1 or cut
            with memoryview(buf) as view, view[:end] as head:
                block = bytes(head)  # one copy, not two (a bytearray slice, then bytes)
            del buf[:end]
            cut -= end
            done += len(block)
            if size_for is not None:
                size = size_for(done)
            yield block
        if full and not cut and len(buf) > max_line_bytes:  # one unfinished line, too long
            skipping, skipped = bytes(buf[:_PREFIX_BYTES]), len(buf)
            buf = bytearray()
    if skipping is not None:
        yield OversizedLine(skipping, skipped)
    elif buf:
        yield bytes(buf)


def count_lines(block: bytes) -> int:
    """Lines in a block, counted the way ``iter_lines`` yields them."""
    if not block:
        return 0
    return block.count(b"\n") + (0 if block.endswith(b"\n") else 1)


def block_lines(
    block: bytes, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | OversizedLine]]:
    """(offset in ``block``, line) for each line of a block from ``iter_blocks``: the lines
    ``iter_lines`` would give, with where each one starts."""
    pieces = block.split(b"\n")
    if not pieces[-1]:
        pieces.pop()  # a final newline does not start an empty last line
    offset = 0
    for piece in pieces:
        if len(piece) > max_line_bytes:
            yield offset, OversizedLine(piece[:_PREFIX_BYTES], len(piece))
        else:
            yield offset, piece
        offset += len(piece) + 1
