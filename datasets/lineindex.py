"""Where lines start, recorded while a file streams past, so a page of examples can be read
by seeking instead of scanning the file from the top.

A checkpoint (line number, byte offset) is taken at the first line start at least
``step`` bytes after the previous one, so a lookup never scans more than about ``step``
bytes plus one line, whatever the line lengths. Past ``max_checkpoints`` every other one is
dropped and the step doubles, which bounds the stored index for any file size.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import BinaryIO

INDEX_STEP_BYTES = 1 << 20
MAX_CHECKPOINTS = 4096
SCAN_CHUNK = 1 << 20


class LineIndexer:
    def __init__(
        self, step: int = INDEX_STEP_BYTES, max_checkpoints: int = MAX_CHECKPOINTS
    ) -> None:
        self.step = step
        self.max_checkpoints = max_checkpoints
        self.offset = 0
        self.newlines = 0
        self.last_byte = b""
        self.lines: list[int] = []
        self.offsets: list[int] = []
        self._next_at = step

    def feed(self, chunk: bytes) -> None:
        size = len(chunk)
        if not size:
            return
        pos = max(0, self._next_at - self.offset)
        counted_to, counted = 0, 0
        while pos < size:
            i = chunk.find(b"\n", pos)
            if i < 0:
                break
            counted += chunk.count(b"\n", counted_to, i + 1)
            counted_to = i + 1
            start = self.offset + i + 1
            self.lines.append(self.newlines + counted + 1)
            self.offsets.append(start)
            self._next_at = start + self.step
            pos = self._next_at - self.offset
        self.newlines += chunk.count(b"\n")
        self.offset += size
        self.last_byte = chunk[-1:]
        if len(self.lines) > self.max_checkpoints:
            self.lines, self.offsets = self.lines[1::2], self.offsets[1::2]
            self.step *= 2

    @property
    def line_count(self) -> int:
        """Lines as an editor counts them: a last line without its newline still counts."""
        trailing = 1 if self.offset and self.last_byte != b"\n" else 0
        return self.newlines + trailing

    def to_json(self) -> dict[str, list[int]]:
        # A checkpoint taken right after the final newline points at end of file: drop it.
        pairs = [(n, o) for n, o in zip(self.lines, self.offsets, strict=True) if o < self.offset]
        return {"lines": [n for n, _ in pairs], "offsets": [o for _, o in pairs]}


def seek_line(fh: BinaryIO, line: int, index: dict[str, list[int]] | None) -> bool:
    """Move ``fh`` to the start of 1-based ``line``; False when the file has fewer lines."""
    lines = (index or {}).get("lines") or []
    offsets = (index or {}).get("offsets") or []
    k = bisect_right(lines, line) - 1
    current, offset = (lines[k], offsets[k]) if k >= 0 else (1, 0)
    fh.seek(offset)
    to_skip = line - current
    while to_skip > 0:
        chunk = fh.read(SCAN_CHUNK)
        if not chunk:
            return False
        found = chunk.count(b"\n")
        if found < to_skip:
            to_skip -= found
            offset += len(chunk)
            continue
        pos = -1
        for _ in range(to_skip):
            pos = chunk.find(b"\n", pos + 1)
        offset += pos + 1
        fh.seek(offset)
        to_skip = 0
    # At end of file there is no line to start, unless the file is empty and line is 1.
    here = fh.tell()
    at_eof = not fh.read(1)
    fh.seek(here)
    return not at_eof
